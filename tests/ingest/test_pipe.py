"""``maildesk ingest`` on SQLite stores exactly what the intake stores, without loading SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from sqlalchemy import select

from maildesk.ingest.intake import Intake, RawMail
from maildesk.ingest.pipe import sqlite_path, store_sqlite
from maildesk.storage.models import InboxMail
from maildesk.storage.store import open_store
from tests.support.config import ROOT
from tests.support.mail import make_mail

NOW = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)


def _row(store, inbox_id):
    with store.read() as s:
        r = s.scalars(select(InboxMail).where(InboxMail.id == inbox_id)).one()
        return (r.received_at, r.source, r.mail_from, r.rcpt_to, r.size, r.sha256, r.raw, r.status, r.attempts, r.queue)


def test_the_pipe_path_stores_what_the_intake_stores(tmp_path):
    raw = make_mail(subject="Über den Drucker").as_bytes()
    rcpt = ("support@example.test", "billing@example.test")
    a, b = open_store(f"sqlite:///{tmp_path}/a.db"), open_store(f"sqlite:///{tmp_path}/b.db")
    a.upgrade()
    b.upgrade()
    via_intake = Intake(a, lambda: NOW).store_one(RawMail(raw, "jane@customer.test", rcpt, "pipe"))
    via_pipe = store_sqlite(sqlite_path(f"sqlite:///{tmp_path}/b.db"), raw, "jane@customer.test", rcpt, now=NOW)
    assert via_intake == via_pipe == 1
    assert _row(a, 1) == _row(b, 1)
    assert store_sqlite(str(tmp_path / "b.db"), raw, "x@y.test", ("support@example.test",)) == 1  # the same bytes: stored once
    a.dispose()
    b.dispose()


def test_sqlite_path_only_for_sqlite_files():
    assert sqlite_path("sqlite:////var/lib/maildesk/db.sqlite") == "/var/lib/maildesk/db.sqlite"
    assert sqlite_path("sqlite:///var/maildesk.db?timeout=5") == "var/maildesk.db"
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql+psycopg://maildesk@db/maildesk") is None


def test_ingest_does_not_load_sqlalchemy(tmp_path):
    from tests.support.config import write_config
    from tests.support.servers import free_port

    cfg = write_config(tmp_path, port=free_port())
    store = open_store(f"sqlite:///{tmp_path}/var/maildesk.db")
    store.upgrade()
    store.dispose()
    probe = ("import sys; from maildesk.cli.main import main; code = main(['--config', sys.argv[1], 'ingest']); "
             "print('loaded' if 'sqlalchemy' in sys.modules else 'not loaded'); sys.exit(code)")
    res = subprocess.run([sys.executable, "-c", probe, str(cfg)], input=make_mail().as_bytes(), capture_output=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().split() == ["stored", "inbox", "1", "not", "loaded"]
