"""Notifications decided by processing and rendered later by the delivery worker (maildesk.outgoing.notices)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.outgoing.notices import send_notices
from maildesk.storage.models import Event, Notice
from tests.support import MaildeskProcess, deliver, free_port, make_mail, outbox_mails, write_config


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


def test_a_notice_that_cannot_be_rendered_is_dropped_with_an_event(tmp_path, clock):
    (tmp_path / "broken" / "config" / "templates").mkdir(parents=True)
    (tmp_path / "broken" / "config" / "templates" / "notification.txt.j2").write_text(
        "{% block subject %}[{{ ref }}] {{ event }}{% endblock %}"
        "{% block body %}{% if event == 'assigned' %}{{ no_such_variable }}{% else %}ok{% endif %}{% endblock %}")
    desk = _desk(tmp_path, clock, "broken")
    desk.notices_later = True
    try:
        _conversation(desk)  # a new ticket (its notice cannot be rendered) and a reply (it can)
        assert send_notices(desk) == 2
        with desk.store.read() as s:
            assert s.scalar(text("SELECT count(*) FROM notices WHERE done_at IS NULL")) == 0
            failed = s.scalars(select(Event).where(Event.kind == "notification_failed")).all()
        assert len(failed) == 1 and "no_such_variable" in failed[0].detail["error"]
        assert len(outbox_mails(desk, "notification")) == 1
    finally:
        desk.store.dispose()


def test_outbox_flush_renders_pending_notices(late):
    _conversation(late)
    res = MaildeskProcess(late.config.path).cli("outbox", "flush")
    assert b"2 notification(s) rendered" in res.stdout
    assert len(outbox_mails(late, "notification")) == 2
