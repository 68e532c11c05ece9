"""``maildesk jobs run --at``: a time ahead of now needs ``--dry-run`` (which changes nothing,
row for row and byte for byte) or ``--force`` (whose mail is due now, not at the simulated
time); a time without a time zone is refused."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.storage.models import Base
from tests.daemon.test_jobs import RULES, SLA, T0
from tests.support.agents import AGENTS
from tests.support.clock import Clock
from tests.support.config import write_config
from tests.support.database import migrated_sqlite
from tests.support.desk import deliver
from tests.support.mail import make_mail
from tests.support.servers import MaildeskProcess, free_port


@pytest.fixture
def md(tmp_path) -> MaildeskProcess:
    """A migrated desk with one ticket opened now (real time) and its acknowledgement queued."""
    proc = MaildeskProcess(write_config(tmp_path, port=free_port(), files={"agents.toml": AGENTS, "rules.toml": RULES,
                                                                           "sla.toml": SLA}))
    migrated_sqlite(tmp_path / "var" / "maildesk.db")  # as `maildesk db upgrade` leaves it (tests/support/database.py)
    proc.cli("ingest", "--process", input=make_mail().as_bytes())
    return proc


def _snapshot(md: MaildeskProcess) -> tuple[str, list[str]]:
    """The database file's bytes (hashed; no other connection is open, so no WAL) and every row as SQL."""
    db = md.config.parent / "var" / "maildesk.db"
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return digest, list(conn.iterdump())
    finally:
        conn.close()


def _created(md: MaildeskProcess) -> datetime:
    return datetime.fromisoformat(md.json("tickets", "show", "MD-1")["created_at"])


def test_dry_run_prints_what_would_happen_and_changes_nothing(md):
    at = _created(md) + timedelta(hours=4, minutes=30)  # ahead of now: warning, breach, first escalation step
    outbox = md.json("outbox", "list")
    assert sorted(r["kind"] for r in outbox) == ["ack", "notification"]  # the ticket's own mail
    before = _snapshot(md)
    res = md.cli("jobs", "run", "--at", at.isoformat(), "--dry-run")
    out = res.stdout.decode()
    assert "check_sla: 1 warning(s), 1 breach(es), 1 escalation step(s)" in out
    assert "4 event(s) it would record:" in out  # the digest's digest_sent is the fourth
    assert "  - digest to alice@example.test" in out  # last week's digest, to the team lead
    assert "  MD-1 sla_breach: target=first_response" in out
    assert "  MD-1 notification to alice@example.test" in out  # the team lead, notified by the escalation
    assert out.rstrip().endswith("dry run: nothing was changed")
    after = _snapshot(md)
    assert after[1] == before[1]  # row for row: no event, no outbox row, no job run, no SLA state
    assert after[0] == before[0]  # byte for byte
    assert md.json("outbox", "list") == outbox
    rows = md.cli("jobs", "list").stdout.decode().splitlines()[1:]
    assert rows and all(" never " in row for row in rows)  # no job run recorded


def test_ahead_of_now_needs_force_and_forced_mail_is_due_now(md):
    at = _created(md) + timedelta(hours=4, minutes=30)
    before = _snapshot(md)
    refused = md.cli("jobs", "run", "--at", at.isoformat(), check=False)
    assert refused.returncode == 64 and refused.stdout == b""
    err = refused.stderr.decode()
    assert err.count("\n") == 1 and "is ahead of now" in err and "--dry-run" in err and "--force" in err
    assert _snapshot(md) == before

    started = datetime.now(UTC)
    out = md.cli("jobs", "run", "check_sla", "--at", at.isoformat(), "--force").stdout.decode()
    finished = datetime.now(UTC)
    assert out.strip() == "check_sla: 1 warning(s), 1 breach(es), 1 escalation step(s)"
    queued = [r for r in md.json("outbox", "list") if r["id"] > 2]  # after the ack and the new-ticket notification
    assert queued, "the forced run queued no mail"
    for row in queued:  # due now, not in four and a half hours
        assert started - timedelta(seconds=1) <= datetime.fromisoformat(row["next_attempt_at"]) <= finished
    kinds = [e["kind"] for e in md.json("tickets", "show", "MD-1")["events"]]
    assert kinds.count("sla_breach") == 1


@pytest.mark.parametrize("at", ["2026-11-24T09:30:00", "2026-11-24 09:30"])
def test_at_without_a_time_zone_is_a_usage_error(md, at):
    before = _snapshot(md)
    res = md.cli("jobs", "run", "--at", at, "--dry-run", check=False)
    assert res.returncode == 64
    err = res.stderr.decode()
    assert err.count("\n") == 1 and "has no time zone" in err
    assert _snapshot(md) == before


def _rows(desk) -> dict[str, list]:
    with desk.store.read() as session:
        return {t.name: [tuple(r) for r in session.execute(select(t).order_by(*t.primary_key.columns))]
                for t in Base.metadata.sorted_tables}


def test_dry_run_rolls_back_on_every_database(tmp_path, db_url):
    """The rolled-back store in process, on SQLite and PostgreSQL: the jobs see their own
    changes (the escalation step after the breach) and none of them stays."""
    from maildesk.daemon.scheduler import run_jobs

    cfg = write_config(tmp_path / "cfg", port=free_port(), db_url=db_url,
                       files={"agents.toml": AGENTS, "rules.toml": RULES, "sla.toml": SLA})
    desk = build_desk(load_config(cfg), clock=Clock(T0))
    try:
        desk.store.upgrade()
        sync_directory(desk)
        deliver(desk, make_mail())
        before = _rows(desk)
        run = run_jobs(desk, ["check_sla", "remind_pending", "close_resolved", "housekeeping"],
                       T0 + timedelta(hours=9), dry_run=True, prepare=sync_directory)
        assert run.results[0] == ("check_sla", "1 warning(s), 1 breach(es), 3 escalation step(s)")
        assert sum("escalation" in e for e in run.events) == 3 and run.mails
        assert _rows(desk) == before
        real = run_jobs(desk, ["check_sla"], T0 + timedelta(hours=9))
        assert real.results == run.results[:1] and _rows(desk) != before
    finally:
        desk.store.dispose()
