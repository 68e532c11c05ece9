"""Per-thread serialization across instances on PostgreSQL (maildesk/process/threadlock.py): a
reply decided while the mail it answers is held by another instance's processing waits
for it instead of forking a second ticket, and the advisory locks make related messages
wait for each other's commit."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.ingest.intake import Intake, RawMail
from maildesk.parse.message import parse
from maildesk.process.pipeline import process_pending
from maildesk.process.threadlock import lock_threads, thread_keys
from maildesk.storage.models import InboxMail
from tests.support.config import write_config
from tests.support.mail import make_mail
from tests.support.servers import free_port


@pytest.fixture
def pg_desks(pg_url, tmp_path, clock):
    """Two desks on one PostgreSQL schema: two instances' processing workers."""
    config = load_config(write_config(tmp_path, port=free_port(), db_url=pg_url))
    desks = [build_desk(config, clock=clock), build_desk(config, clock=clock)]
    desks[0].store.upgrade()
    sync_directory(desks[0])
    yield desks
    for d in desks:
        d.store.dispose()


def _accept(desk, msg, mail_from: str = "jane@customer.test") -> int:
    return Intake(desk.store, desk.clock).store_one(RawMail(msg.as_bytes(), mail_from, ("support@example.test",), "smtp"))


def _ticket(desk, inbox_id: int):
    with desk.store.read() as s:
        return s.execute(select(InboxMail.status, InboxMail.ticket_id).where(InboxMail.id == inbox_id)).one()


@pytest.mark.parametrize("replier", ["jane@customer.test", "colleague@customer.test"])
def test_a_reply_waits_while_the_mail_it_answers_is_held_by_another_instance(pg_desks, replier):
    a, b = pg_desks
    first = make_mail(subject="Printer on fire", message_id="<first@customer.test>", cc="colleague@customer.test")
    reply = make_mail(subject="Re: Printer on fire", message_id="<reply@customer.test>", in_reply_to="<first@customer.test>",
                      sender=replier)
    first_id, reply_id = _accept(a, first), _accept(b, reply, replier)
    # Instance A has claimed the first mail and is deciding it (its transaction is open).
    held = a.store.engine.connect()
    tx = held.begin()
    held.execute(text("SELECT id FROM inbox WHERE id = :id FOR UPDATE"), {"id": first_id})
    try:
        assert process_pending(b, ids=[reply_id]) == []  # B leaves the reply for later: no ticket of its own
        assert _ticket(b, reply_id) == ("pending", None)
    finally:
        tx.rollback()
        held.close()
    done = process_pending(a, ids=[first_id])
    assert [r.status for r in done] == ["processed"]
    (answer,) = process_pending(b, ids=[reply_id])
    assert answer.ticket_id == done[0].ticket_id, "the reply forked a ticket of its own"


def test_related_messages_wait_for_each_others_commit(pg_desks):
    a, b = pg_desks
    first = parse(make_mail(message_id="<x1@customer.test>").as_bytes(), mail_from="jane@customer.test")
    reply = parse(make_mail(message_id="<x2@customer.test>", in_reply_to="<x1@customer.test>",
                            sender="Bob <bob@customer.test>").as_bytes(), mail_from="bob@customer.test")
    other = parse(make_mail(message_id="<y1@customer.test>", sender="Zed <zed@customer.test>").as_bytes(),
                  mail_from="zed@customer.test")
    assert thread_keys(first) & thread_keys(reply) and not thread_keys(first) & thread_keys(other)
    with a.store.transaction() as holder:
        lock_threads(holder, [first])
        with b.store.transaction() as s:  # an unrelated thread is not held up
            s.execute(text("SET LOCAL lock_timeout = '2s'"))
            lock_threads(s, [other])
        waited = threading.Event()

        def related():
            try:
                with b.store.transaction() as s:
                    s.execute(text("SET LOCAL lock_timeout = '300ms'"))
                    lock_threads(s, [reply])
            except OperationalError as exc:  # lock_timeout: it waited for the holder's commit
                if "lock timeout" in str(exc):
                    waited.set()

        t = threading.Thread(target=related)
        t.start()
        t.join(10)
        assert waited.is_set(), "a reply to a thread being decided elsewhere did not wait for it"
