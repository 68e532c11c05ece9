"""Scheduled jobs on several instances sharing one PostgreSQL schema (docs/scaling.md): two
desks, each with its own connections, start every job in the same instant (a barrier), and
each SLA step, reminder, auto-close and digest still happens once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import text

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.daemon.jobs import JOBS
from maildesk.daemon.scheduler import run_job
from tests.daemon.test_jobs import AGENTS, RULES, SLA, T0
from tests.support import Clock, deliver, free_port, make_mail, write_config

TICKETS = 12


def _desks(tmp_path, pg_url, n=2):
    cfg = write_config(tmp_path, port=free_port(), db_url=pg_url, files={"agents.toml": AGENTS, "rules.toml": RULES, "sla.toml": SLA})
    desks = [build_desk(load_config(cfg), clock=Clock(T0)) for _ in range(n)]
    desks[0].store.upgrade()
    for desk in desks:
        sync_directory(desk)
    return desks


def _at_once(desks, name, at):
    gate = threading.Barrier(len(desks))
    results, errors = [], []

    def run(desk):
        gate.wait()
        try:
            results.append(run_job(desk, name, at))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in desks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_every_job_started_by_two_instances_at_once_runs_once(tmp_path, pg_url):
    desks = _desks(tmp_path, pg_url)
    try:
        for i in range(TICKETS):
            deliver(desks[0], make_mail(subject=f"Case {i}", sender=f"Customer {i} <c{i}@customer.test>",
                                        message_id=f"<case{i}@customer.test>"))
        with desks[0].store.transaction() as session:  # four wait on the customer, four were resolved long ago
            session.execute(text("UPDATE tickets SET status = 'pending', pending_since = :t WHERE id <= 4"),
                            {"t": T0 - timedelta(days=3, hours=1)})
            session.execute(text("UPDATE tickets SET status = 'resolved', resolved_at = :t WHERE id > 4 AND id <= 8"),
                            {"t": T0 - timedelta(days=8)})

        at = T0 + timedelta(hours=6)
        for rnd in range(2):  # the second round: both instances again, nothing new is due
            for name in JOBS:
                results = _at_once(desks, name, at)
                assert len(results) == 2, (rnd, name, results)

        with desks[0].store.read() as session:
            events = session.execute(text("SELECT ticket_id, kind, CAST(detail AS TEXT) FROM events")).all()
            outbox = session.execute(text("SELECT ticket_id, kind, CAST(rcpt_to AS TEXT), created_at FROM outbox")).all()
            statuses = dict(session.execute(text("SELECT id, status FROM tickets")).all())
        kinds = Counter((t, k) for t, k, _ in events)
        open_ = [t for t, s in statuses.items() if s in ("new", "open")]
        assert len(open_) == 4 and [t for t, s in statuses.items() if s == "closed"] == [5, 6, 7, 8]
        # SLA: breached at 4 h, escalation steps 0 (at the breach) and 1 (an hour later) due by 6 h.
        steps = Counter((t, d) for t, k, d in events if k == "escalation")
        assert set(steps.values()) == {1}, steps
        assert {t for t, _ in steps} == set(open_) | {1, 2, 3, 4} and len(steps) == 2 * 8
        for t in set(open_) | {1, 2, 3, 4}:
            assert kinds[(t, "sla_breach")] == 1 and kinds[(t, "sla_warning")] == 1, t
        for t in (1, 2, 3, 4):
            assert kinds[(t, "reminder")] == 1, t
        assert sum(1 for _, k, _ in events if k == "digest_sent") == 1
        # Each mail queued once: no (ticket, kind, recipients, time) twice.
        twice = {k: n for k, n in Counter(outbox).items() if n > 1}
        assert not twice, twice
        assert Counter(r[1] for r in outbox)["reminder"] == 4
        assert Counter(r[1] for r in outbox if r[0] is None)["digest"] == 1
    finally:
        for desk in desks:
            desk.store.dispose()
