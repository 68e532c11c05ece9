"""The two writers answer the same calls with the same rows: the immediate
:class:`~maildesk.storage.writer.Writer` writes them at once, the buffered
:class:`~maildesk.storage.batch.Batch` when it is flushed. Ticket code never asks which one it has."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from maildesk.outgoing.outbox import enqueue
from maildesk.parse.message import parse
from maildesk.process.autoreply import may_autoreply, record_autoreply
from maildesk.storage.batch import Batch, Cut, Isolate
from maildesk.storage.models import Base
from maildesk.storage.store import open_store
from maildesk.storage.writer import Writer
from maildesk.tickets.state import add_message, add_participants, contact_for, open_ticket, record, set_status
from tests.mailfactory import attachment, message, multipart
from tests.mailfactory import text as text_part

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _mail():
    raw = message(multipart("mixed", text_part("The printer is on fire.\n"),
                            attachment(b"%PDF-1.4 fake", "invoice.pdf", "application/pdf")),
                  subject="Printer on fire", sender="Jane <jane@customer.test>", to="support@example.test",
                  headers=(("Cc", "Ann <ann@customer.test>"),), message_id="<fire-1@customer.test>")
    return parse(raw, mail_from="jane@customer.test", rcpt_to=("support@example.test",))


def _calls(w: Writer) -> None:
    """What processing a new ticket does, through every write the ticket code makes."""
    msg = _mail()
    contact, known = contact_for(w, "Jane@Customer.test", "Jane", NOW)
    assert not known
    ticket = open_ticket(w, msg, contact, NOW, support_address="support@example.test")
    assert ticket.id == 1
    w.touch(ticket)
    stored = add_message(w, ticket, msg, inbox_id=None, kind="customer", via="new", now=NOW)
    add_participants(w, ticket, ["jane@customer.test", "ann@customer.test", "support@example.test"], "cc",
                     lambda a: a == "support@example.test")
    add_participants(w, ticket, ["ann@customer.test"], "cc")  # already there: ignored
    record(w, ticket, "customer", "created", NOW, source="smtp")
    set_status(w, ticket, "open", "customer", NOW, reason="a test")
    assert may_autoreply(w, "jane@customer.test", NOW, 3, 3600) is None
    record_autoreply(w, "Jane@customer.test", NOW)
    enqueue(w, ticket_id=ticket.id, kind="ack", raw=b"Subject: ack\r\n\r\nthanks\r\n", message_id="<ack-1@example.test>",
            mail_from="support+bounce@example.test", rcpt_to=["jane@customer.test"], now=NOW)
    enqueue(w, ticket_id=None, kind="digest", raw=b"Subject: digest\r\n\r\n-\r\n", message_id="<digest-1@example.test>",
            mail_from="support@example.test", rcpt_to=["bob@example.test"], now=NOW)
    w.notice({"ticket_id": ticket.id, "event": "new_ticket", "template": "notification", "agents": ["bob"], "addresses": [],
              "actor": "", "extra": {}, "created_at": NOW, "done_at": None}, stored)
    w.round_robin("tier1", "alice")
    w.flush()


def _rows(store) -> dict[str, list]:
    """Every row of every table (the schema's version table aside), in primary-key order."""
    out = {}
    with store.read() as s:
        for table in Base.metadata.sorted_tables:
            out[table.name] = [tuple(row) for row in s.execute(select(table).order_by(*table.primary_key.columns))]
    return out


def _run(tmp_path, name: str, make) -> dict[str, list]:
    store = open_store(f"sqlite:///{tmp_path}/{name}.db")
    try:
        store.upgrade()
        with store.transaction() as session, make(session) as w:
            _calls(w)
        return _rows(store)
    finally:
        store.dispose()


def test_both_writers_write_the_same_rows(tmp_path):
    immediate = _run(tmp_path, "immediate", Writer)
    buffered = _run(tmp_path, "buffered", Batch)
    for table in ("contacts", "tickets", "messages", "attachments", "blobs", "message_ids", "participants", "events",
                  "outbox", "outbox_bodies", "autoreplies", "notices", "assign_state"):
        assert immediate.get(table), f"the calls wrote nothing into {table}"
    assert immediate == buffered


def test_only_a_batch_refuses_or_hands_over_a_message(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    try:
        store.upgrade()
        with store.transaction() as session:
            immediate = Writer(session)
            immediate.guard_message("jane@customer.test", "<a@x>", (), ())
            immediate.guard_message("jane@customer.test", "<b@x>", ("<a@x>",), ())
            immediate.isolate("a bounce")  # runs on
            with Batch(session) as batch:
                batch.guard_message("jane@customer.test", "<a@x>", (), ())
                with pytest.raises(Cut):
                    batch.guard_message("jane@customer.test", "<b@x>", ("<a@x>",), ())
                with pytest.raises(Isolate):
                    batch.isolate("a bounce")
                with batch.suspended() as alone:
                    assert type(alone) is Writer and alone.session is session
    finally:
        store.dispose()
