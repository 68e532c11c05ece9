"""``maildesk status`` and the Prometheus metrics on ``[metrics] listen``, against the real daemon."""

from __future__ import annotations

import json
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
    d.stop()
    res = d.cli("status", "--json", check=False)
    assert res.returncode == 1 and json.loads(res.stdout)["listener"]["up"] is False  # usable as a health check


def test_metrics_are_off_by_default(daemon_factory):
    d = daemon_factory()
    assert "Prometheus" not in d.log.read_text()
