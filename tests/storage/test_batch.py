"""Processing in batches (maildesk.storage.batch, pipeline._run_optimistic) decides exactly what
processing one message at a time decides, on the shipped config, for a mix of mail whose
messages depend on each other inside one batch."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import pytest
from sqlalchemy import select, text

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.ingest.intake import Intake, RawMail
from maildesk.process import pipeline
from maildesk.process.pipeline import process_pending
from maildesk.storage.batch import Batch
from maildesk.storage.models import Contact, Event, InboxMail, Outbox, Participant, Ticket, TicketMessage
from maildesk.storage.store import open_store
from tests.support.config import write_config
from tests.support.mail import make_mail, message
from tests.support.mail import text as text_part
from tests.support.servers import free_port


def _desk(tmp_path, clock, name: str):
    desk = build_desk(load_config(write_config(tmp_path / name, port=free_port(), shipped_config=True)), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    return desk


def _mails() -> list[tuple[bytes, str, tuple[str, ...]]]:
    """(raw, envelope sender, recipients): messages that lean on each other when they share a batch."""
    out = []

    def add(msg, rcpt=("support@example.test",), mail_from=None):
        raw = msg if isinstance(msg, bytes) else msg.as_bytes()
        out.append((raw, mail_from if mail_from is not None else "sender@customer.test", tuple(rcpt)))

    for i in range(6):
        add(make_mail(subject=f"Printer {i} jammed", sender=f"user{i}@customer.test"))
    add(make_mail(subject="Invoice 77 is wrong", sender="ann@customer.test", to="billing@example.test"),
        rcpt=("billing@example.test",))
    first = make_mail(subject="VPN drops every hour", sender="jane@customer.test", message_id="<jane-1@customer.test>")
    add(first)
    add(make_mail(subject="Re: VPN drops every hour", body="Still happening.", sender="jane@customer.test",
                  in_reply_to="<jane-1@customer.test>", references="<jane-1@customer.test>"))  # same sender, threads to it
    add(make_mail(subject="Re: VPN drops every hour", body="Me too.", sender="colleague@customer.test",
                  in_reply_to="<jane-1@customer.test>"))  # someone else, threads by header
    twice = make_mail(subject="Copied to both desks", sender="cc@customer.test", message_id="<twice@customer.test>")
    add(twice)
    add(b"Received: from mx2.example.test; Mon, 23 Nov 2026 09:00:05 +0000\r\n" + twice.as_bytes(),
        rcpt=("billing@example.test",))  # the same mail through another server: a duplicate
    for i in range(12):  # VIP outages: tier 2, least loaded, until alice reaches her capacity of 10
        add(make_mail(subject=f"Outage {i}: portal down", sender=f"ops{i}@bigcorp.example.com"))
    for i in range(5):  # one sender, many mails: the rate limit of 3 acknowledgements per hour
        add(make_mail(subject=f"Question {i}", sender="chatty@customer.test"))
    add(make_mail(subject="Out of office", sender="away@customer.test", headers={"Auto-Submitted": "auto-replied"}))
    add(make_mail(subject="Newsletter", sender="news@lists.example.org", headers={"List-Unsubscribe": "<mailto:u@x>"}))
    add(make_mail(subject="Not really Bob", sender="Bob <bob@example.test>"))  # an agent's address: the rare path
    add(make_mail(subject="Re: [MD-3] Printer 2 jammed", body="Any news?", sender="user2@customer.test"))  # by subject
    add(message(text_part("Läuft nicht.\n", charset="iso-8859-1", cte="quoted-printable"), subject="Drucker",
                sender="de@customer.test"))
    return out


def _store(desk, mails) -> None:
    Intake(desk.store, desk.clock).store_batch([RawMail(raw, frm, rcpt, "smtp") for raw, frm, rcpt in mails])


def _snapshot(desk) -> dict:
    """Everything processing decided, without what differs by nature (random Message-IDs)."""
    with desk.store.read() as s:
        tickets = [(t.id, t.subject, t.status, t.priority, t.team, t.assignee.login if t.assignee else None, tuple(t.tags),
                    t.spam, t.requester.address, t.sla_policy, t.first_response_due, t.parent_id)
                   for t in s.scalars(select(Ticket).order_by(Ticket.id))]
        messages = sorted(Counter((m.ticket_id, m.direction, m.kind, m.thread_via, m.subject)
                                  for m in s.scalars(select(TicketMessage))).items())
        events = sorted(Counter((e.ticket_id, e.kind, e.actor) for e in s.scalars(select(Event))).items())
        outbox = sorted(Counter((o.ticket_id, o.kind, tuple(o.rcpt_to)) for o in s.scalars(select(Outbox))).items())
        inbox = [(r.id, r.status, r.ticket_id, r.outcome) for r in s.scalars(select(InboxMail).order_by(InboxMail.id))]
        contacts = sorted((c.address, c.name) for c in s.scalars(select(Contact)))
        participants = sorted((p.ticket_id, p.address, p.role) for p in s.scalars(select(Participant)))
    return {"tickets": tickets, "messages": messages, "events": events, "outbox": outbox, "inbox": inbox,
            "contacts": contacts, "participants": participants}


@pytest.fixture
def flushes(monkeypatch):
    """How many batches were written, and how many messages they held."""
    seen = Counter()
    original = Batch.flush

    def counting(self, *args):
        seen["batches"] += 1
        seen["messages"] += self.messages
        return original(self, *args)

    monkeypatch.setattr(Batch, "flush", counting)
    return seen


def test_batches_decide_what_one_at_a_time_decides(tmp_path, clock, caplog, flushes):
    mails = _mails()
    batched, single = _desk(tmp_path, clock, "batched"), _desk(tmp_path, clock, "single")
    try:
        _store(batched, mails)
        _store(single, mails)
        with caplog.at_level(logging.WARNING, logger="maildesk.pipeline"):
            while process_pending(batched):
                pass
        assert not [r for r in caplog.records if "batched processing" in r.getMessage()], "a batch fell back"
        assert 0 < flushes["batches"] < len(mails) / 2, f"messages were not grouped: {flushes}"
        while process_pending(single, batched=False):
            pass
        a, b = _snapshot(batched), _snapshot(single)
        for key in a:
            assert a[key] == b[key], f"{key} differ"
        inbox = {row[0]: row for row in a["inbox"]}
        assert all(row[1] in ("processed", "duplicate") for row in inbox.values()), a["inbox"]
        # what the messages that lean on each other got
        assert [r[1] for r in a["inbox"]].count("duplicate") == 1
        vpn = next(t for t in a["tickets"] if t[1] == "VPN drops every hour")
        on_vpn = Counter({kind: n for (tid, d, kind, _, _), n in a["messages"] if tid == vpn[0] and d == "in"})
        # jane's reply to her own mail proves nothing (kept, marked); the colleague naming jane's
        # Message-ID is no participant: their own ticket, linked to jane's
        assert on_vpn == {"customer": 1, "unverified": 1}
        linked = next(t for t in a["tickets"] if t[8] == "colleague@customer.test")
        assert linked[11] == vpn[0]
        outages = [t for t in a["tickets"] if t[1].startswith("Outage")]
        assert [t[5] for t in outages].count("alice") == 10 and outages[-1][5] is None  # capacity counted inside batches
        chatty = [t[0] for t in a["tickets"] if t[8] == "chatty@customer.test"]
        acks = sum(n for (tid, kind, _), n in a["outbox"] if tid in chatty and kind == "ack")
        assert acks == 3
        assert next(t for t in a["tickets"] if t[1] == "Printer 2 jammed")[0] == 3
        assert sum(n for (tid, d, kind, via, _), n in a["messages"] if tid == 3 and via == "subject") == 1
    finally:
        batched.store.dispose()
        single.store.dispose()


def test_a_message_that_fails_alone_is_kept_failed_and_the_rest_is_processed(tmp_path, clock, monkeypatch, caplog):
    desk = _desk(tmp_path, clock, "poison")
    try:
        _store(desk, [(make_mail(subject=f"Ticket {i}", sender=f"p{i}@customer.test").as_bytes(), "p@customer.test",
                       ("support@example.test",)) for i in range(8)])
        real = pipeline.handle

        def handle(session, desk_, row, msg, now):
            if msg.subject == "Ticket 4":
                raise RuntimeError("boom in ticket 4")
            return real(session, desk_, row, msg, now)

        monkeypatch.setattr(pipeline, "handle", handle)
        with caplog.at_level(logging.WARNING):
            results = process_pending(desk)
        assert [r.status for r in results].count("failed") == 1
        assert "boom in ticket 4" in next(r.text for r in results if r.status == "failed")
        with desk.store.read() as s:
            assert s.scalar(select(Ticket.id).where(Ticket.subject == "Ticket 4")) is None
            assert len(s.scalars(select(Ticket)).all()) == 7
            assert s.scalar(text("SELECT count(*) FROM inbox WHERE status = 'failed'")) == 1
            assert s.scalar(text("SELECT count(*) FROM outbox WHERE kind = 'ack'")) == 7  # nothing twice
    finally:
        desk.store.dispose()


def test_a_change_made_while_deciding_sends_the_chunk_back_under_the_lock(tmp_path, clock, monkeypatch, caplog):
    """Another process writes while processing decides without the lock: the decisions are
    thrown away and made again, so the other write is not lost and nothing is done twice."""
    desk = _desk(tmp_path, clock, "race")
    other = open_store(desk.config.database.url)
    try:
        _store(desk, [(make_mail(subject="First", sender="a@customer.test").as_bytes(), "a@customer.test",
                       ("support@example.test",))])
        process_pending(desk)
        _store(desk, [(make_mail(subject=f"Re: [MD-1] First {i}", sender="a@customer.test", body="more").as_bytes(),
                       "a@customer.test", ("support@example.test",)) for i in range(3)])
        real, raced = pipeline.handle, threading.Event()

        def handle(session, desk_, row, msg, now):
            outcome = real(session, desk_, row, msg, now)
            if not raced.is_set():  # meanwhile an agent changes the ticket (another process, a real commit)
                raced.set()
                with other.transaction() as s:
                    s.get(Ticket, 1).priority = "urgent"
            return outcome

        monkeypatch.setattr(pipeline, "handle", handle)
        with caplog.at_level(logging.DEBUG, logger="maildesk.pipeline"):
            results = process_pending(desk)
        assert [r.status for r in results] == ["processed"] * 3
        assert any("deciding them again under the lock" in r.getMessage() for r in caplog.records)
        with desk.store.read() as s:
            ticket = s.get(Ticket, 1)
            assert ticket.priority == "urgent"  # the other write survived
            # the replies name the ticket by subject only: kept on it, marked unverified
            assert s.scalar(text("SELECT count(*) FROM messages WHERE ticket_id = 1 AND kind IN ('customer', 'unverified')")) == 4
            assert s.scalar(text("SELECT count(*) FROM tickets")) == 1
    finally:
        other.dispose()
        desk.store.dispose()
