"""Outbox delivery against a real aiosmtpd sink: retries with backoff, permanent failures, leases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from maildesk.config.load import OutboundConfig
from maildesk.outgoing.deliver import MaildirDeliverer, SmtpDeliverer
from maildesk.outgoing.outbox import backoff, drain, retry
from maildesk.outgoing.tokens import verify_bounce
from maildesk.storage.models import Event, Outbox, Suppression
from tests.support.desk import deliver
from tests.support.mail import make_mail
from tests.support.servers import free_port

CFG = OutboundConfig(smarthost="127.0.0.1:1", retry_base=30, retry_max=3600, max_attempts=4)


def _row(desk):
    with desk.store.read() as s:
        return s.scalars(select(Outbox)).one()


def test_backoff_doubles_up_to_the_cap():
    assert [backoff(n, CFG).total_seconds() for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]


def test_delivered_to_sink_once(desk, sink):
    deliver(desk, make_mail(subject="one"))
    smtp = SmtpDeliverer("127.0.0.1", sink.port)
    assert drain(desk.store, smtp, CFG, desk.clock).sent == 1
    assert drain(desk.store, smtp, CFG, desk.clock).total == 0
    assert len(sink.messages) == 1 and _row(desk).status == "sent"
    # VERP: each mail has its own signed envelope sender naming its Message-ID's random part
    envelope = sink.messages[0].mail_from
    key = sink.parsed()[0]["Message-ID"].strip("<>").split("@")[0]
    assert envelope.startswith(f"support+b{key}-") and envelope.endswith("@example.test")
    assert verify_bounce(desk.secret, envelope.split("+", 1)[1].split("@")[0]) == key


def test_temporary_failures_retry_with_backoff_then_give_up(desk, clock):
    deliver(desk, make_mail())
    down = SmtpDeliverer("127.0.0.1", free_port(), timeout=2)
    assert drain(desk.store, down, CFG, clock).retried == 1
    row = _row(desk)
    assert row.status == "queued" and row.attempts == 1 and row.next_attempt_at == clock.now + timedelta(seconds=30)
    assert drain(desk.store, down, CFG, clock).total == 0  # not due yet
    for _ in range(3):
        clock.advance(hours=2)
        drain(desk.store, down, CFG, clock)
    row = _row(desk)
    assert row.status == "failed" and row.attempts == 4
    with desk.store.read() as s:
        assert s.scalars(select(Event).where(Event.kind == "delivery_failed")).one().detail["outbox"] == row.id
    with desk.store.transaction() as s:
        assert retry(s, clock.now) == 1
    assert _row(desk).status == "queued"


def test_4xx_is_temporary_and_5xx_is_permanent(desk, sink, clock):
    deliver(desk, make_mail(sender="jane@customer.test"))
    smtp = SmtpDeliverer("127.0.0.1", sink.port)
    sink.data_reply = "451 4.3.0 try later"
    assert drain(desk.store, smtp, CFG, clock).retried == 1
    clock.advance(minutes=5)
    sink.data_reply = None
    sink.rcpt_reply = lambda a: "550 5.1.1 no such user"
    assert drain(desk.store, smtp, CFG, clock, suppress_days=30).failed == 1
    row = _row(desk)
    assert row.status == "failed" and "550" in row.last_error
    with desk.store.read() as s:
        assert s.get(Suppression, "jane@customer.test").until > clock.now + timedelta(days=29)


def test_expired_lease_is_reclaimed_after_a_crash(desk, sink, clock):
    deliver(desk, make_mail())
    with desk.store.transaction() as s:  # a worker claimed it and died
        row = s.scalars(select(Outbox)).one()
        row.status, row.claimed_until = "sending", clock.now + timedelta(minutes=5)
    smtp = SmtpDeliverer("127.0.0.1", sink.port)
    assert drain(desk.store, smtp, CFG, clock).total == 0
    clock.advance(minutes=6)
    assert drain(desk.store, smtp, CFG, clock).sent == 1


def test_a_lease_held_by_a_dead_instance_elsewhere_is_taken_over_after_it_runs_out(pg_url, tmp_path, sink, clock):
    """Two instances on one PostgreSQL database: the mail another machine's instance claimed
    before it died waits for the lease, then this one sends it, once."""
    from maildesk.config.load import load_config
    from maildesk.daemon.build import build_desk, sync_directory
    from tests.support import write_config

    desk = build_desk(load_config(write_config(tmp_path, port=free_port(), db_url=pg_url)), clock=clock)
    try:
        desk.store.upgrade()
        sync_directory(desk)
        deliver(desk, make_mail())
        with desk.store.transaction() as s:
            row = s.scalars(select(Outbox)).one()
            row.status, row.claimed_by, row.claimed_until = "sending", "other-host:4242", clock.now + timedelta(minutes=5)
        smtp = SmtpDeliverer("127.0.0.1", sink.port)
        assert drain(desk.store, smtp, CFG, clock).total == 0  # not this host's: the lease runs first
        clock.advance(minutes=5, seconds=1)
        assert drain(desk.store, smtp, CFG, clock).sent == 1
        assert drain(desk.store, smtp, CFG, clock).total == 0
        assert len(sink.message_ids()) == 1
        assert _row(desk).status == "sent" and _row(desk).claimed_by is None
    finally:
        desk.store.dispose()


def test_maildir_delivery(tmp_path):
    d = MaildirDeliverer(tmp_path / "sent")
    d.send("support@example.test", ["a@b.c"], b"Subject: x\r\n\r\nbody\r\n")
    files = list((tmp_path / "sent" / "new").iterdir())
    assert len(files) == 1 and files[0].read_bytes().endswith(b"Subject: x\r\n\r\nbody\r\n")
