"""``maildesk status`` and the Prometheus metrics on ``[metrics] listen``, against the real daemon."""

from __future__ import annotations

import json
import time
import urllib.request

from tests.support.mail import make_mail, send
from tests.support.servers import free_port, wait_until


def _metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("maildesk_")}


def test_status_and_metrics_show_liveness_and_backlog(daemon_factory, sink):
    sink.data_reply = "451 try later"  # the acknowledgement stays queued: a backlog to see
    mport = free_port()
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", extra=f'[metrics]\nlisten = "127.0.0.1:{mport}"\n')
    send(d.port, make_mail())
    wait_until(lambda: d.json("status")["outbox_queued"] == 1, timeout=20, what="the acknowledgement queued")
    data = d.json("status")
    assert data["listener"]["up"] is True
    assert data["inbox_pending"] == 0 and data["outbox_oldest_queued_age_seconds"] is not None
    human = d.cli("status").stdout.decode()
    assert f"listener 127.0.0.1:{d.port}: up" in human and "outbox: 1 queued" in human
    m = _metrics(mport)
    assert m["maildesk_listener_up"] == 1.0 and m["maildesk_database_up"] == 1.0
    assert m["maildesk_outbox_queued"] + m["maildesk_outbox_sending"] == 1.0
    assert m["maildesk_inbox_pending"] == 0.0
    wait_until(lambda: any(k.startswith("maildesk_job_last_run_age_seconds{") for k in _metrics(mport)), timeout=20,
               what="a job's last run in the metrics")
    m = _metrics(mport)
    for key in ("inbox_failed", "inbox_oldest_pending_age_seconds", "outbox_failed", "outbox_oldest_queued_age_seconds"):
        assert f"maildesk_{key}" in m, key
    assert m["maildesk_outbox_oldest_queued_age_seconds"] > 0
    assert 'maildesk_job_last_run_age_seconds{job="check_sla"}' in m
    jobs = {j["name"]: j for j in d.json("status")["jobs"]}
    assert jobs["check_sla"]["last_run_at"] and jobs["check_sla"]["last_run_age_seconds"] is not None
    assert "job check_sla: last run 20" in d.cli("status").stdout.decode()
    d.stop()
    res = d.cli("status", "--json", check=False)
    assert res.returncode == 1 and json.loads(res.stdout)["listener"]["up"] is False  # usable as a health check
    # Mail accepted while nothing processes it (the daemon is down): pending, with the age of the oldest.
    d.cli("ingest", "--sender", "jane@customer.test", "--recipient", "support@example.test", input=make_mail().as_bytes())
    time.sleep(1.1)
    data = json.loads(d.cli("status", "--json", check=False).stdout)
    assert data["inbox_pending"] == 1 and data["inbox_oldest_pending_age_seconds"] >= 1.0
    assert "inbox: 1 pending (oldest " in d.cli("status", check=False).stdout.decode()


def test_metrics_are_off_by_default(daemon_factory):
    d = daemon_factory()
    assert "Prometheus" not in d.log.read_text()
