"""maildesk.process.pipeline: pending inbox rows are parsed, handled and marked, oldest first.

The contract under test: a pending row becomes ``processed`` with its outcome, ticket,
attempt count and time; a message whose handling raises is rolled back alone, its row
``failed`` with the error, and the others are processed; ``retry_inbox`` puts failed rows
back; a crash in the middle (the process dies before the commit) leaves every row pending,
so the restarted daemon handles each exactly once. On SQLite and, when reachable, PostgreSQL.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import delete, func, select

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.ingest.intake import Intake, RawMail
from maildesk.process import pipeline
from maildesk.process.pipeline import process_pending, retry_inbox
from maildesk.storage.models import InboxMail, InboxRaw, Outbox, Ticket
from tests.support.config import write_config
from tests.support.mail import make_mail
from tests.support.servers import free_port


def _build(config, clock):
    desk = build_desk(load_config(config), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    return desk


@pytest.fixture
def config(tmp_path, db_url):
    return write_config(tmp_path, port=free_port(), db_url=db_url)


@pytest.fixture
def pdesk(config, clock):
    """An in-process desk on SQLite or PostgreSQL (the ``db_url`` fixture)."""
    desk = _build(config, clock)
    yield desk
    desk.store.dispose()


def _store(desk, *subjects: str, body: str = "It does not work.") -> list[int]:
    """One customer mail per subject, accepted by the intake; returns the inbox ids."""
    mails = [RawMail(make_mail(subject=s, body=body, sender=f"c{i}@customer.test").as_bytes(), f"c{i}@customer.test",
                     ("support@example.test",), "smtp") for i, s in enumerate(subjects)]
    return Intake(desk.store, desk.clock).store_batch(mails)


def _rows(desk) -> dict[int, InboxMail]:
    with desk.store.read() as s:
        rows = {r.id: r for r in s.scalars(select(InboxMail).order_by(InboxMail.id))}
        s.expunge_all()
    return rows


def _count(desk, model, *where) -> int:
    with desk.store.read() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def poison(monkeypatch):
    """Handling a message whose subject contains "poison" raises (a bug on one message);
    ``poison.cure()`` makes handling work again, as a fixed release would."""
    real = pipeline.handle

    def handle(session, desk, row, msg, now):
        if "poison" in (msg.subject or ""):
            raise RuntimeError(f"poison pill in {msg.subject!r}")
        return real(session, desk, row, msg, now)

    monkeypatch.setattr(pipeline, "handle", handle)

    class Poison:
        @staticmethod
        def cure():
            monkeypatch.setattr(pipeline, "handle", real)

    return Poison


def test_a_pending_row_becomes_processed_once(pdesk, clock):
    (inbox_id,) = _store(pdesk, "Printer on fire")
    clock.advance(minutes=2)
    (result,) = process_pending(pdesk)
    assert (result.inbox_id, result.status) == (inbox_id, "processed") and result.ticket_id is not None
    row = _rows(pdesk)[inbox_id]
    assert (row.status, row.error, row.attempts, row.ticket_id) == ("processed", None, 1, result.ticket_id)
    assert row.outcome == result.text and row.message_id.endswith("@customer.test>")
    assert row.processed_at.replace(tzinfo=None) == clock.now.replace(tzinfo=None)
    with pdesk.store.read() as s:
        assert s.get(Ticket, result.ticket_id).subject == "Printer on fire"
    assert _count(pdesk, Outbox, Outbox.kind == "ack") == 1

    assert process_pending(pdesk) == []  # nothing pending: nothing happens twice
    assert _rows(pdesk)[inbox_id].attempts == 1
    assert _count(pdesk, Outbox, Outbox.kind == "ack") == 1


def test_oldest_first_within_limit_and_only_the_ids_asked_for(pdesk):
    first, second, third = _store(pdesk, "one", "two", "three")
    assert [r.inbox_id for r in process_pending(pdesk, ids=[third])] == [third]
    assert [r.inbox_id for r in process_pending(pdesk, limit=1)] == [first]
    assert [r.inbox_id for r in process_pending(pdesk)] == [second]
    rows = _rows(pdesk)
    with pdesk.store.read() as s:
        subjects = {rows[i].ticket_id: s.get(Ticket, rows[i].ticket_id).subject for i in (first, second, third)}
    assert sorted(subjects.items()) == [(1, "three"), (2, "one"), (3, "two")]  # tickets numbered in processing order


def test_batch_bytes_take_the_first_row_whatever_its_size(pdesk):
    big, small = _store(pdesk, "big", "small")
    assert [r.inbox_id for r in process_pending(pdesk, max_bytes=10)] == [big]  # alone over the budget: taken anyway
    assert [r.inbox_id for r in process_pending(pdesk, max_bytes=10)] == [small]
    more = _store(pdesk, "three", "four", "five")
    sizes = {i: r.size for i, r in _rows(pdesk).items()}
    budget = sizes[more[0]] + sizes[more[1]] + sizes[more[2]] - 1  # two fit, the third does not
    assert [r.inbox_id for r in process_pending(pdesk, max_bytes=budget)] == more[:2]
    assert [r.inbox_id for r in process_pending(pdesk, max_bytes=budget)] == more[2:]


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one-at-a-time"])
def test_a_failing_message_is_kept_failed_the_others_are_processed_and_retry_works(pdesk, clock, poison, caplog, batched):
    ok1, bad, ok2 = _store(pdesk, "fine", "poison", "also fine")
    with caplog.at_level(logging.INFO, logger="maildesk.pipeline"):
        results = process_pending(pdesk, batched=batched)
    assert {r.inbox_id: r.status for r in results} == {ok1: "processed", bad: "failed", ok2: "processed"}
    rows = _rows(pdesk)
    failed = rows[bad]
    assert failed.status == "failed" and failed.ticket_id is None and failed.attempts == 1
    assert failed.error == "RuntimeError: poison pill in 'poison'" and failed.message_id.endswith("@customer.test>")
    assert failed.processed_at is not None
    assert _count(pdesk, Ticket) == 2 and _count(pdesk, Outbox, Outbox.kind == "ack") == 2  # its writes were rolled back
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert logged == [f"processing failed, kept for `maildesk inbox retry {bad}`: RuntimeError: poison pill in 'poison'"]

    assert process_pending(pdesk) == []  # failed is not pending: not retried on its own
    poison.cure()
    with pdesk.store.transaction() as s:
        assert retry_inbox(s, ok1) == 0  # a processed row is left alone
        assert retry_inbox(s, bad) == 1
    row = _rows(pdesk)[bad]
    assert (row.status, row.error) == ("pending", None)
    (again,) = process_pending(pdesk)
    assert (again.inbox_id, again.status) == (bad, "processed")
    row = _rows(pdesk)[bad]
    assert (row.status, row.error, row.attempts, row.ticket_id) == ("processed", None, 2, again.ticket_id)
    assert _count(pdesk, Outbox, Outbox.kind == "ack") == 3


def test_retry_inbox_one_or_all(pdesk, poison):
    bad1, bad2, ok = _store(pdesk, "poison 1", "poison 2", "fine")
    process_pending(pdesk)
    with pdesk.store.transaction() as s:
        assert retry_inbox(s, bad2) == 1
    assert {i: r.status for i, r in _rows(pdesk).items()} == {bad1: "failed", bad2: "pending", ok: "processed"}
    with pdesk.store.transaction() as s:
        assert retry_inbox(s) == 1  # every failed row: bad1 (bad2 is pending already)
    assert {i: r.status for i, r in _rows(pdesk).items()} == {bad1: "pending", bad2: "pending", ok: "processed"}


def test_a_crash_while_handling_leaves_every_row_pending_for_the_restart(pdesk, config, clock, monkeypatch):
    """The process dies in the middle of a chunk (KeyboardInterrupt is no Exception: nothing
    catches it, as nothing catches SIGKILL): no row is marked, nothing is queued, and the
    restarted desk processes each message exactly once."""
    ids = _store(pdesk, "one", "two", "three")
    real, seen = pipeline.handle, []

    def dying(session, desk, row, msg, now):
        seen.append(row.id)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(session, desk, row, msg, now)

    monkeypatch.setattr(pipeline, "handle", dying)
    with pytest.raises(KeyboardInterrupt):
        process_pending(pdesk)
    assert seen == ids[:2]
    assert {r.status for r in _rows(pdesk).values()} == {"pending"} and {r.attempts for r in _rows(pdesk).values()} == {0}
    assert _count(pdesk, Ticket) == 0 and _count(pdesk, Outbox) == 0
    pdesk.store.dispose()

    monkeypatch.setattr(pipeline, "handle", real)
    restarted = _build(config, clock)
    try:
        assert sorted(r.inbox_id for r in process_pending(restarted) if r.status == "processed") == ids
        assert _count(restarted, Ticket) == 3 and _count(restarted, Outbox, Outbox.kind == "ack") == 3
        assert {r.attempts for r in _rows(restarted).values()} == {1}
    finally:
        restarted.store.dispose()


def test_a_row_without_its_bytes_is_handled_as_an_empty_message(pdesk):
    """A database edited by hand may lose a raw mail: the row is still handled, not stuck."""
    (gone,) = _store(pdesk, "vanishing")
    with pdesk.store.transaction() as s:
        s.execute(delete(InboxRaw).where(InboxRaw.inbox_id == gone))
    (result,) = process_pending(pdesk)
    assert (result.inbox_id, result.status) == (gone, "processed"), result
    assert _rows(pdesk)[gone].status == result.status
