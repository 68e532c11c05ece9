"""Notifications decided by processing and rendered later by the delivery worker (maildesk.outgoing.notices)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.outgoing.deliver import SmtpDeliverer
from maildesk.outgoing.notices import send_notices
from maildesk.outgoing.outbox import drain
from maildesk.storage.models import Event, Notice
from tests.support import MaildeskProcess, deliver, free_port, make_mail, outbox_mails, send, wait_until, write_config


def _desk(tmp_path, clock, name: str, **config):
    desk = build_desk(load_config(write_config(tmp_path / name, port=free_port(), shipped_config=True, **config)), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    return desk


@pytest.fixture
def late(tmp_path, clock):
    """A desk like the processing worker's: notifications are recorded as notices."""
    desk = _desk(tmp_path, clock, "late")
    desk.notices_later = True
    yield desk
    desk.store.dispose()


def _notifications(desk) -> list[tuple]:
    return sorted((m["To"].addresses[0].addr_spec, str(m["Subject"]), m["X-Maildesk-Event"],
                   m.get_body(("plain",)).get_content().replace("\r\n", "\n"))
                  for m in outbox_mails(desk, "notification"))


def _conversation(desk) -> None:
    deliver(desk, make_mail(subject="Invoice 12 is wrong", sender="ann@customer.test", message_id="<ann-1@customer.test>",
                            to="billing@example.test"), rcpt=("billing@example.test",))
    deliver(desk, make_mail(subject="Re: Invoice 12 is wrong", body="Still waiting, please.", sender="ann@customer.test",
                            in_reply_to="<ann-1@customer.test>"), rcpt=("billing@example.test",))


def test_later_notices_mail_what_immediate_notifications_mail(tmp_path, clock):
    now, later = _desk(tmp_path, clock, "now"), _desk(tmp_path, clock, "later")
    later.notices_later = True
    try:
        _conversation(now)
        _conversation(later)
        assert outbox_mails(later, "notification") == []  # nothing rendered by processing
        with later.store.read() as s:
            pending = s.scalars(select(Notice).order_by(Notice.id)).all()
            assert [(n.event, n.agents, n.done_at) for n in pending] == [("assigned", ["dave"], None),  # the rules assigned him
                                                                         ("customer_reply", ["dave"], None)]
        assert send_notices(later) == 2
        assert send_notices(later) == 0  # each notice once
        assert _notifications(later) == _notifications(now)
        text_of_reply = next(body for _, _, event, body in _notifications(later) if event == "customer_reply")
        assert "Still waiting, please." in text_of_reply and "Earlier on this ticket" in text_of_reply
        with later.store.read() as s:
            assert s.scalar(text("SELECT count(*) FROM notices WHERE done_at IS NULL")) == 0
    finally:
        now.store.dispose()
        later.store.dispose()


def test_history_in_a_late_notice_stops_at_its_message(late):
    _conversation(late)
    deliver(late, make_mail(subject="Re: Invoice 12 is wrong", body="A third mail, after the second.",
                            sender="ann@customer.test", in_reply_to="<ann-1@customer.test>"), rcpt=("billing@example.test",))
    send_notices(late)
    replies = [body for _, _, event, body in _notifications(late) if event == "customer_reply"]
    second = next(b for b in replies if "Still waiting" in b.split("Earlier on this ticket")[0])
    assert "A third mail" not in second  # rendered after the third arrived, about the second


BROKEN = ("{% block subject %}[{{ ref }}] {{ event }}{% endblock %}"
          "{% block body %}{% if event == 'assigned' %}{{ no_such_variable }}{% else %}ok{% endif %}{% endblock %}")


def _broken_desk(tmp_path, clock, name: str = "broken", outbound: str = "", db_url: str | None = None):
    """A processing worker's desk whose notification template fails for ``assigned`` only;
    ``outbound``: lines added to its [outbound] table."""
    templates = tmp_path / name / "config" / "templates"
    templates.mkdir(parents=True)
    (templates / "notification.txt.j2").write_text(BROKEN)
    path = write_config(tmp_path / name, port=free_port(), shipped_config=True, db_url=db_url)
    path.write_text(path.read_text().replace("[outbound]\n", f"[outbound]\n{outbound}\n"))
    desk = build_desk(load_config(path), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    desk.notices_later = True
    return desk, templates / "notification.txt.j2"


def _notice(desk, notice_id: int) -> Notice:
    with desk.store.read() as s:
        return s.get(Notice, notice_id)


def test_a_notice_that_cannot_be_rendered_is_kept_and_mailed_once_it_can(tmp_path, clock, sink):
    desk, template = _broken_desk(tmp_path, clock)
    try:
        _conversation(desk)  # a new ticket (its notice cannot be rendered) and a reply (it can)
        assert send_notices(desk) == 1
        kept = _notice(desk, 1)
        assert (kept.event, kept.status, kept.done_at, kept.attempts) == ("assigned", "pending", None, 1)
        assert kept.next_attempt_at == clock.now + timedelta(seconds=30)  # [outbound] retry_base
        assert "no_such_variable" in kept.last_error
        with desk.store.read() as s:
            assert s.scalars(select(Event).where(Event.kind == "notification_failed")).all() == []  # not failed for good
        template.unlink()  # the operator fixes the template (the shipped one is used again)
        clock.advance(seconds=29)
        assert send_notices(desk) == 0 and _notice(desk, 1).attempts == 1  # not due before its backoff
        clock.advance(seconds=1)
        assert send_notices(desk) == 1
        assert _notice(desk, 1).done_at == clock.now
        assert sorted(event for _, _, event, _ in _notifications(desk)) == ["assigned", "customer_reply"]
        assert send_notices(desk) == 0  # mailed once
        sent = drain(desk.store, SmtpDeliverer("127.0.0.1", sink.port), desk.config.outbound, desk.clock)
        assert sent.sent == 3  # the acknowledgement and both notifications, through a real SMTP server
        assert sorted(m["X-Maildesk-Event"] for m in sink.parsed() if m["X-Maildesk-Event"]) == ["assigned", "customer_reply"]
    finally:
        desk.store.dispose()


def test_a_notice_failing_every_attempt_is_kept_as_failed_with_an_event(tmp_path, clock, caplog, db_url):
    desk, _ = _broken_desk(tmp_path, clock, outbound="notice_max_attempts = 3", db_url=db_url)
    try:
        _conversation(desk)
        waits = []
        for _ in range(3):
            send_notices(desk)
            waits.append((_notice(desk, 1).next_attempt_at - clock.now).total_seconds())
            clock.advance(hours=1)
        assert waits[:2] == [30, 60]  # doubling from [outbound] retry_base
        failed = _notice(desk, 1)
        assert (failed.status, failed.attempts, failed.done_at) == ("failed", 3, None)  # kept, not done
        with desk.store.read() as s:
            events = s.scalars(select(Event).where(Event.kind == "notification_failed")).all()
        assert len(events) == 1 and events[0].ticket_id == 1
        assert events[0].detail["notice"] == 1 and events[0].detail["attempts"] == 3
        assert "no_such_variable" in events[0].detail["error"] and events[0].detail["event"] == "assigned"
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and "notice 1 " in errors[0] and "maildesk notices retry 1" in errors[0]
        clock.advance(days=2)
        assert send_notices(desk) == 0 and _notice(desk, 1).status == "failed"  # a failed notice is not taken again
        assert [event for _, _, event, _ in _notifications(desk)] == ["customer_reply"]
        assert _notice(desk, 2).done_at is not None  # the one that could be rendered went out at once
    finally:
        desk.store.dispose()


def test_the_daemon_mails_a_kept_notice_once_the_template_is_fixed(tmp_path, sink):
    from tests.daemon.test_status_metrics import _metrics
    from tests.e2e.test_agents import AGENTS, notification_for

    template = tmp_path / "d" / "config" / "templates" / "notification.txt.j2"
    template.parent.mkdir(parents=True)
    template.write_text(BROKEN.replace("'assigned'", "'new_ticket'"))
    mport = free_port()
    d = MaildeskProcess(write_config(tmp_path / "d", port=free_port(), smarthost=f"127.0.0.1:{sink.port}",
                                     files={"agents.toml": AGENTS}, extra=f'[metrics]\nlisten = "127.0.0.1:{mport}"\n'))
    d.cli("db", "upgrade")
    d.start()
    try:
        send(d.port, make_mail(subject="Printer on fire"))
        wait_until(lambda: any(n["attempts"] >= 1 for n in d.json("notices", "list")), timeout=30, what="a failed attempt")
        backlog = d.json("status")
        assert backlog["notices_pending"] + backlog["notices_failed"] >= 1
        m = _metrics(mport)
        assert m["maildesk_notices_pending"] + m["maildesk_notices_failed"] >= 1
        template.unlink()  # the operator fixes it: the shipped template is used again
        note = notification_for(sink, "alice", event="new_ticket")  # tried again after the backoff, now mailed
        assert "[MD-1]" in note["Subject"]
        wait_until(lambda: all(n["status"] == "done" for n in d.json("notices", "list")), timeout=30, what="every notice done")
        assert d.json("status")["notices_pending"] == 0
        assert _metrics(mport)["maildesk_notices_pending"] == 0
    finally:
        d.stop()


def test_outbox_flush_renders_pending_notices(late):
    _conversation(late)
    res = MaildeskProcess(late.config.path).cli("outbox", "flush")
    assert b"2 notification(s) rendered" in res.stdout
    assert len(outbox_mails(late, "notification")) == 2
