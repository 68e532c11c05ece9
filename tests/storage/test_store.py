"""Storage on SQLite and PostgreSQL: migrations, durable intake, unique ticket numbers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from maildesk.ingest.intake import Intake, RawMail
from maildesk.storage.models import Base, InboxMail, InboxRaw, Ticket
from maildesk.storage.store import open_store
from tests.support.config import ROOT
from tests.support.mail import make_mail


def test_migrations_build_exactly_the_models(db_url):
    store = open_store(db_url)
    before, after = store.upgrade()
    assert before is None and after == store.head_revision()
    store.check_schema()
    with store.engine.connect() as conn:
        # the search_* full-text tables and indexes (migration 0006) are not models
        opts = {"compare_type": False, "include_name": lambda name, type_, parents: not (name or "").startswith("search_")}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"
    assert store.upgrade() == (after, after)  # idempotent
    store.dispose()


def test_sqlite_runs_in_wal_with_full_sync(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_intake_commits_batches_and_dedupes_identical_bytes(db_url):
    store = open_store(db_url)
    store.upgrade()
    intake = Intake(store)
    a = make_mail(subject="a").as_bytes()
    b = make_mail(subject="b").as_bytes()
    ids = intake.store_batch([RawMail(a, "x@y.z", ("support@example.test",), "smtp"),
                              RawMail(b, "x@y.z", ("support@example.test",), "smtp"),
                              RawMail(a, "x@y.z", ("support@example.test",), "smtp")])
    assert ids[0] == ids[2] != ids[1]
    assert intake.store_one(RawMail(a, "", (), "pipe")) == ids[0]
    with store.read() as s:
        rows = s.scalars(select(InboxMail).order_by(InboxMail.id)).all()
        assert [r.raw for r in rows] == [a, b]
        assert {r.status for r in rows} == {"pending"}
    store.dispose()


def test_unique_ticket_numbers_from_concurrent_processes(pg_url):
    """Two OS processes creating tickets on one PostgreSQL never share a number."""
    store = open_store(pg_url)
    store.upgrade()
    script = textwrap.dedent(f"""
        import sys
        from datetime import datetime, UTC
        from maildesk.storage.store import open_store
        from maildesk.storage.models import Contact, Ticket
        store = open_store({pg_url!r})
        tag = sys.argv[1]
        with store.transaction() as s:
            c = Contact(address=tag + "@x.test", name="", created_at=datetime.now(UTC))
            s.add(c)
        numbers = []
        for i in range(100):
            with store.transaction() as s:
                t = Ticket(subject=tag, requester_id=c.id, created_at=datetime.now(UTC), updated_at=datetime.now(UTC), tags=[])
                s.add(t)
                s.flush()
                numbers.append(t.id)
        print(" ".join(map(str, numbers)))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, tag], stdout=subprocess.PIPE, cwd=ROOT, text=True)
             for tag in ("p1", "p2")]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    numbers = [int(n) for out in outs for n in out.split()]
    assert len(numbers) == 200 and len(set(numbers)) == 200
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 200
        assert s.execute(text("select 1")).scalar() == 1
    store.dispose()


def test_threading_lookups_use_indexes(tmp_path):
    """Message-ID and participant lookups never scan a table (bench/ measures them at 1M rows)."""
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    store.upgrade()
    queries = [
        "SELECT message_id, ticket_id FROM message_ids WHERE message_id IN ('<a@x>', '<b@x>')",
        "SELECT ticket_id FROM participants WHERE ticket_id IN (1, 2) AND address = 'a@b.c'",
        "SELECT id FROM outbox WHERE message_id = '<a@x>'",
        "SELECT id FROM inbox WHERE sha256 IN ('ab', 'cd')",
        "SELECT id FROM inbox WHERE status = 'pending' ORDER BY id LIMIT 200",
    ]
    with store.engine.connect() as conn:
        for q in queries:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {q}"))
            assert "USING" in plan and not plan.startswith("SCAN"), (q, plan)
    store.dispose()


def test_writer_lock_lets_the_intake_go_first(tmp_path):
    """Background work in a long transaction sees the intake waiting and can give way; a
    background writer arriving while the intake waits goes after it (real flocks, separate
    stores, as separate processes have)."""
    import threading
    import time

    url = f"sqlite:///{tmp_path}/lock.db"
    background, intake, other = open_store(url), open_store(url), open_store(url)
    background.upgrade()
    order, saw_intake = [], threading.Event()
    holding = threading.Event()

    def long_background():
        with background.transaction():
            holding.set()
            deadline = time.monotonic() + 10
            while not background.priority_waiting() and time.monotonic() < deadline:
                time.sleep(0.005)
            if background.priority_waiting():
                saw_intake.set()
            time.sleep(0.2)  # time for the second background writer to queue up behind the intake
            order.append("background")

    def priority_write():
        with intake.transaction(priority=True, changes_state=False):
            order.append("intake")

    def late_background():
        with other.transaction():
            order.append("other")

    t1 = threading.Thread(target=long_background)
    t1.start()
    assert holding.wait(5)
    assert not background.priority_waiting()
    t2 = threading.Thread(target=priority_write)
    t2.start()
    assert saw_intake.wait(5), "the background transaction never saw the intake waiting"
    t3 = threading.Thread(target=late_background)
    t3.start()
    for t in (t1, t2, t3):
        t.join(10)
    assert order == ["background", "intake", "other"]
    for s in (background, intake, other):
        s.dispose()


def test_checkpoint_bounds_the_wal_under_steady_commits(tmp_path, monkeypatch):
    """With the daemon's own checkpoints, a WAL over the limit is copied to the end in the
    writer's turn (it waits for a writer that holds it), and the next commit starts the WAL
    over, shrinking the file to ``journal_size_limit``."""
    import sqlite3
    import threading
    import time
    from datetime import UTC, datetime

    from maildesk.storage import store as store_module
    monkeypatch.setattr(store_module, "WAL_LIMIT", 64 * 1024)
    url = f"sqlite:///{tmp_path}/wal.db"
    ckpt, writer = open_store(url, own_checkpoints=True), open_store(url, own_checkpoints=True)
    ckpt.upgrade()
    wal = tmp_path / "wal.db-wal"
    raw = make_mail(subject="fill the WAL", body="x" * 20_000).as_bytes()
    for i in range(20):  # one commit each: far more WAL than the (patched) limit
        with writer.transaction(changes_state=False) as s:
            row = InboxMail(size=len(raw), sha256=f"{i:064d}", source="test", status="processed", received_at=datetime.now(UTC))
            s.add(row)
            s.flush()
            s.add(InboxRaw(inbox_id=row.id, raw=raw + str(i).encode()))
    assert wal.stat().st_size > 10 * 64 * 1024
    # a reader's snapshot keeps the unlocked copy from reaching the end, as a steady stream of commits would
    reader = sqlite3.connect(tmp_path / "wal.db", check_same_thread=False, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM inbox").fetchone()
    with writer.transaction(changes_state=False) as s:
        s.execute(text("UPDATE inbox SET status = 'failed' WHERE id = 2"))
    holding, released = threading.Event(), threading.Event()

    def hold_the_writer_turn():
        with writer.transaction(changes_state=False):
            holding.set()
            time.sleep(0.3)
            reader.execute("ROLLBACK")
            released.set()

    t = threading.Thread(target=hold_the_writer_turn)
    t.start()
    assert holding.wait(5)
    ckpt.checkpoint()
    assert released.is_set(), "the checkpoint over the limit did not wait for the writer's turn"
    t.join(5)
    busy, frames, copied = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, frames) == (0, copied)
    with writer.transaction(changes_state=False) as s:  # the next commit starts the WAL over
        s.execute(text("UPDATE inbox SET status = 'processed' WHERE id = 1"))
    assert wal.stat().st_size <= 64 * 1024
    ckpt._checkpointed = 0.0
    ckpt.checkpoint()  # under the limit now: no wait for anyone
    reader.close()
    for s in (ckpt, writer):
        s.dispose()


def test_outbox_bodies_migration_keeps_queued_mail(db_url):
    """A database with mail queued before the outbox bodies had a table of their own keeps
    every mail across the upgrade (and back across the downgrade)."""
    from alembic import command

    store = open_store(db_url)
    cfg = store.alembic_config()
    command.upgrade(cfg, "0003")
    now = "2026-12-01 10:00:00"
    with store.engine.begin() as conn:
        for i, raw in enumerate((b"Subject: one\r\n\r\nfirst mail\r\n", b"Subject: two\r\n\r\nsecond mail\r\n")):
            conn.execute(text("INSERT INTO outbox (kind, created_at, mail_from, rcpt_to, message_id, raw, status, attempts, "
                              "next_attempt_at) VALUES ('ack', :now, 'support@example.test', '[\"jane@customer.test\"]', "
                              ":mid, :raw, 'queued', 0, :now)"), {"now": now, "mid": f"<m{i}@example.test>", "raw": raw})
    command.upgrade(cfg, "head")
    from sqlalchemy.orm import Session

    from maildesk.storage.models import Outbox

    with Session(store.engine) as s:
        assert [(o.message_id, o.raw) for o in s.scalars(select(Outbox).order_by(Outbox.id))] == [
            ("<m0@example.test>", b"Subject: one\r\n\r\nfirst mail\r\n"),
            ("<m1@example.test>", b"Subject: two\r\n\r\nsecond mail\r\n")]
    command.downgrade(cfg, "0003")
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT raw FROM outbox ORDER BY id")).scalars().all() == [
            b"Subject: one\r\n\r\nfirst mail\r\n", b"Subject: two\r\n\r\nsecond mail\r\n"]
    store.dispose()


def test_inbox_raw_migration_keeps_every_mail(db_url):
    """Mail accepted before the raw bytes had a table of their own keeps its bytes across the
    upgrade (and back across the downgrade); new ids still never reuse old ones."""
    from alembic import command

    store = open_store(db_url)
    cfg = store.alembic_config()
    command.upgrade(cfg, "0004")
    mails = (b"Subject: one\r\n\r\nfirst mail\r\n", b"Subject: two\r\n\r\nsecond mail\r\n", b"Subject: three\r\n\r\nthird\r\n")
    with store.engine.begin() as conn:
        for i, raw in enumerate(mails):
            conn.execute(text("INSERT INTO inbox (received_at, source, mail_from, rcpt_to, size, sha256, raw, status, attempts) "
                              "VALUES ('2026-12-01 10:00:00', 'smtp', 'jane@customer.test', '[]', :size, :sha, :raw, 'pending', 0)"),
                         {"size": len(raw), "sha": f"{i:064d}", "raw": raw})
        conn.execute(text("DELETE FROM inbox WHERE sha256 = :sha"), {"sha": f"{2:064d}"})
    command.upgrade(cfg, "head")
    from sqlalchemy.orm import Session

    with Session(store.engine) as s:
        assert [(r.id, r.raw) for r in s.scalars(select(InboxMail).order_by(InboxMail.id))] == [(1, mails[0]), (2, mails[1])]
    new_id = Intake(store).store_one(RawMail(b"Subject: four\r\n\r\nafter the upgrade\r\n", "", (), "smtp"))
    assert new_id == 4  # AUTOINCREMENT kept: id 3 (deleted) is not handed out again
    command.downgrade(cfg, "0004")
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT raw FROM inbox ORDER BY id")).scalars().all() == [
            mails[0], mails[1], b"Subject: four\r\n\r\nafter the upgrade\r\n"]
    store.dispose()


def test_notice_retry_migration_keeps_pending_notices(db_url):
    """Notices recorded before they could be retried are pending and due at once after the
    upgrade; the downgrade takes the new columns away and keeps the notices."""
    from alembic import command

    store = open_store(db_url)
    cfg = store.alembic_config()
    command.upgrade(cfg, "0007")
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO contacts (address, name, created_at) VALUES ('jane@customer.test', '', '2026-12-01 09:00:00')"))
        conn.execute(text("INSERT INTO tickets (id, subject, status, priority, requester_id, tags, spam, created_at, updated_at, "
                          "sla_state, pauses) VALUES (1, 'x', 'new', 'normal', 1, '[]', false, '2026-12-01 09:00:00', "
                          "'2026-12-01 09:00:00', '{}', '[]')"))
        for i, done in enumerate((None, "2026-12-01 10:05:00")):
            conn.execute(text("INSERT INTO notices (ticket_id, event, template, agents, addresses, actor, extra, created_at, done_at) "
                              "VALUES (1, 'assigned', 'notification', '[\"dave\"]', '[]', '', '{}', :at, :done)"),
                         {"at": f"2026-12-01 10:0{i}:00", "done": done})
    command.upgrade(cfg, "head")
    from sqlalchemy.orm import Session

    from maildesk.storage.models import Notice

    with Session(store.engine) as s:
        rows = [(n.id, n.status, n.attempts, n.next_attempt_at.replace(tzinfo=None), n.last_error, n.done_at is None)
                for n in s.scalars(select(Notice).order_by(Notice.id))]
    assert [r[:3] + r[4:] for r in rows] == [(1, "pending", 0, None, True), (2, "pending", 0, None, False)]
    assert [str(r[3]) for r in rows] == ["2026-12-01 10:00:00", "2026-12-01 10:01:00"]  # due since they were recorded
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE notices SET status = 'failed', attempts = 8, last_error = 'boom' WHERE id = 1"))
    command.downgrade(cfg, "0007")
    with store.engine.connect() as conn:
        columns = set(conn.execute(text("SELECT * FROM notices")).keys())
        assert {"status", "attempts", "next_attempt_at", "last_error"}.isdisjoint(columns)
        assert conn.execute(text("SELECT id, done_at IS NULL FROM notices ORDER BY id")).all() == [(1, True), (2, False)]
    command.upgrade(cfg, "head")
    store.check_schema()
    store.dispose()
