"""maildesk.outgoing.notify: which agents hear of what, and how the notification is sent.

Recipients: the assignee (and agents who took part); while unassigned, the ticket's team
(every agent without a team). Agents on leave never get mail; an opt-out holds unless a
rule names the agent (``explicit``). Immediately: the mail is queued in the transaction;
with ``notices_later`` a notice is recorded for the delivery worker; over the fan-out limit
the recipients are held for their digest. Real SQLite stores; mail leaves to the real sink.
"""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select

from maildesk.config.load import OutboundConfig
from maildesk.outgoing.deliver import SmtpDeliverer
from maildesk.outgoing.digest import send_digests
from maildesk.outgoing.fanout import Gate
from maildesk.outgoing.mailer import last_customer_message
from maildesk.outgoing.notices import send_notices
from maildesk.outgoing.notify import agents_on_ticket, notify_addresses, notify_agents, reaches
from maildesk.outgoing.outbox import drain
from maildesk.outgoing.tokens import ReplyToken, verify_token
from maildesk.policy.sync import db_agent
from maildesk.storage.models import Event, HeldNotification, Notice, Outbox, Ticket, TicketMessage
from maildesk.storage.writer import Writer
from tests.support.agents import ALICE, BOB, CAROL, SUPPORT, agents_toml
from tests.support.desk import deliver
from tests.support.mail import make_mail

# alice leads support with bob and dave (on leave); erin is in support too but wants no
# mail about notes; carol is in billing.
DIRECTORY = agents_toml(
    ALICE, BOB, {**CAROL, "teams": ["billing"]},
    {"login": "dave", "name": "Dave Away", "address": "dave@example.test", "teams": ["support"], "available": False},
    {"login": "erin", "name": "Erin Quiet", "address": "erin@example.test", "teams": ["support"], "notify_opt_out": ["note"]},
    teams=[SUPPORT, {"name": "billing"}])
EVERYONE = {"alice", "bob", "carol", "dave", "erin"}


@pytest.fixture
def ndesk(agents_desk_factory):
    return agents_desk_factory(DIRECTORY)


def _ticket(desk, subject="Printer on fire", **changes) -> int:
    """A ticket opened by a customer mail (processing notifies as usual), then changed by hand:
    ``team``, ``assignee`` (a login), ``spam``."""
    number = deliver(desk, make_mail(subject=subject)).ticket_id
    with desk.store.transaction() as s:
        ticket = s.get(Ticket, number)
        for key, value in changes.items():
            setattr(ticket, key, db_agent(s, value) if key == "assignee" else value)
    return number


def _mark(desk) -> int:
    with desk.store.read() as s:
        return s.scalar(select(func.coalesce(func.max(Outbox.id), 0)))


def _queued_since(desk, mark: int) -> dict[str, object]:
    """The notifications queued after ``mark``, by recipient address."""
    with desk.store.read() as s:
        rows = s.scalars(select(Outbox).where(Outbox.id > mark, Outbox.kind == "notification").order_by(Outbox.id)).all()
        out = {}
        for row in rows:
            assert len(row.rcpt_to) == 1, row.rcpt_to  # one mail per agent
            out[row.rcpt_to[0]] = message_from_bytes(row.raw, policy=policy.default)
    return out


def _notify(desk, number: int, event: str = "customer_reply", **kwargs) -> tuple[int, dict]:
    mark = _mark(desk)
    with desk.store.transaction() as s:
        ticket = s.get(Ticket, number)
        n = notify_agents(Writer(s), desk, ticket, event, desk.clock(), message=last_customer_message(s, number), **kwargs)
    return n, _queued_since(desk, mark)


def _logins(queued: dict) -> set[str]:
    return {address.split("@")[0] for address in queued}


def _on_ticket(desk, number: int) -> set[str]:
    with desk.store.read() as s:
        return {a.login for a in agents_on_ticket(s, desk, s.get(Ticket, number))}


def test_who_a_ticket_concerns(ndesk):
    assert _on_ticket(ndesk, _ticket(ndesk, "no team")) == EVERYONE  # unassigned, no team: every agent
    assert _on_ticket(ndesk, _ticket(ndesk, "support's", team="support")) == {"alice", "bob", "dave", "erin"}
    assert _on_ticket(ndesk, _ticket(ndesk, "billing's", team="billing")) == {"carol"}
    assert _on_ticket(ndesk, _ticket(ndesk, "bob's", team="support", assignee="bob")) == {"bob"}  # assigned: not the team


def test_an_agent_who_took_part_stays_concerned_after_assignment(ndesk):
    from maildesk.storage.models import Participant

    number = _ticket(ndesk, team="support", assignee="bob")
    with ndesk.store.transaction() as s:
        s.add(Participant(ticket_id=number, address="carol@partner.test", role="agent"))
    assert _on_ticket(ndesk, number) == {"bob", "carol"}


def test_leave_and_opt_out_filter_the_recipients(ndesk):
    number = _ticket(ndesk, team="support")
    n, queued = _notify(ndesk, number, "customer_reply")
    assert n == 3 and _logins(queued) == {"alice", "bob", "erin"}  # dave is on leave
    n, queued = _notify(ndesk, number, "note")
    assert n == 2 and _logins(queued) == {"alice", "bob"}  # erin opted out of notes
    n, queued = _notify(ndesk, number, "note", exclude=("alice",))  # e.g. the author of the note
    assert n == 1 and _logins(queued) == {"bob"}


def test_a_rule_naming_agents_overrides_opt_outs_but_not_leave(ndesk):
    number = _ticket(ndesk, team="support")
    erin, dave = ndesk.directory.agent("erin"), ndesk.directory.agent("dave")
    assert not reaches(erin, "note") and reaches(erin, "note", explicit=True)
    assert not reaches(dave, "note", explicit=True)
    n, queued = _notify(ndesk, number, "note", recipients=[erin, dave], explicit=True)
    assert n == 1 and _logins(queued) == {"erin"}
    n, queued = _notify(ndesk, number, "note", recipients=[erin, dave])
    assert n == 0 and queued == {}


def test_spam_tickets_notify_nobody(ndesk):
    number = _ticket(ndesk, spam=True)
    assert _notify(ndesk, number) == (0, {})


def test_immediate_notification_headers_and_delivery_to_the_sink(ndesk, sink):
    number = _ticket(ndesk, team="support", assignee="bob")
    with ndesk.store.read() as s:
        customer_mid = last_customer_message(s, number).message_id
    n, queued = _notify(ndesk, number, "customer_reply")
    assert n == 1
    note = queued["bob@example.test"]
    assert str(note["To"]) == "Bob Builder <bob@example.test>"
    assert note["Auto-Submitted"] == "auto-generated" and note["X-Maildesk-Event"] == "customer_reply"
    assert note["X-Maildesk-Ticket"] == f"MD-{number}" and f"[MD-{number}]" in str(note["Subject"])
    assert note["In-Reply-To"] == customer_mid  # threads under the customer's mail in the agent's client
    token = note["Reply-To"].addresses[0]
    assert token.domain == "example.test" and token.username.startswith("support+")
    assert verify_token(ndesk.secret, token.username.split("+", 1)[1]) == ReplyToken("t", number, "bob")  # bob's own
    with ndesk.store.read() as s:  # not on the ticket's message list
        assert s.scalar(select(func.count()).select_from(TicketMessage).where(TicketMessage.ticket_id == number,
                                                                              TicketMessage.kind == "notification")) == 0

    result = drain(ndesk.store, SmtpDeliverer("127.0.0.1", sink.port), OutboundConfig(smarthost=f"127.0.0.1:{sink.port}"), ndesk.clock)
    assert result.failed == 0
    (delivered,) = sink.wait_for(lambda m: m["X-Maildesk-Event"] == "customer_reply")
    assert delivered["Message-ID"] == note["Message-ID"]
    assert [e.rcpt_tos for e in sink.messages if b"X-Maildesk-Event: customer_reply" in e.original_content] == [["bob@example.test"]]


def test_plain_addresses_get_a_token_without_an_agent(ndesk):
    number = _ticket(ndesk)
    mark = _mark(ndesk)
    with ndesk.store.transaction() as s:
        n = notify_addresses(Writer(s), ndesk, s.get(Ticket, number), ["boss@customer.test"], "bad_rating", ndesk.clock())
    assert n == 1
    (mail,) = _queued_since(ndesk, mark).values()
    assert str(mail["To"]) == "boss@customer.test" and mail["X-Maildesk-Event"] == "bad_rating"
    token = mail["Reply-To"].addresses[0].username.split("+", 1)[1]
    assert verify_token(ndesk.secret, token) == ReplyToken("t", number, None)  # no agent: no commands


def test_later_records_a_notice_instead_of_mail(ndesk):
    number = _ticket(ndesk, team="support", assignee="bob")
    ndesk.notices_later = True
    n, queued = _notify(ndesk, number, "customer_reply")
    assert n == 1 and queued == {}  # nothing rendered in the transaction of the change
    with ndesk.store.read() as s:
        (notice,) = s.scalars(select(Notice).where(Notice.done_at.is_(None))).all()
        assert (notice.ticket_id, notice.event, notice.agents, notice.addresses) == (number, "customer_reply", ["bob"], [])
    mark = _mark(ndesk)
    assert send_notices(ndesk) == 1
    assert _logins(_queued_since(ndesk, mark)) == {"bob"}


def test_over_the_fan_out_limit_recipients_are_held_for_their_digest(agents_desk_factory, clock):
    desk = agents_desk_factory(DIRECTORY, extra="[workflow]\nnotify_limit = 1\nnotify_window = 600\n")
    number = _ticket(desk, team="support")  # processing already counted this sender's first mail

    def gated(sender):
        mark = _mark(desk)
        with desk.store.transaction() as s:
            ticket = s.get(Ticket, number)
            gate = Gate(desk, ticket, sender, "Still broken", clock())
            n = notify_agents(Writer(s), desk, ticket, "customer_reply", clock(), gate=gate)
        return n, _queued_since(desk, mark)

    n, queued = gated("jane@customer.test")
    assert n == 0 and queued == {}  # over the limit: nothing mailed now
    with desk.store.read() as s:
        held = s.scalars(select(HeldNotification).order_by(HeldNotification.id)).all()
        assert sorted(h.recipient for h in held) == ["alice", "bob", "erin"]
        assert {(h.ticket_id, h.sender, h.event, h.why) for h in held} == {(number, "jane@customer.test", "customer_reply", "sender")}
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "notifications_held")) == 1

    clock.advance(minutes=11)  # the window is over: the digest goes out, and the sender is counted afresh
    assert send_digests(desk, clock()).startswith("3 digest(s) listing 3 held notification(s)")
    with desk.store.read() as s:
        assert sorted(r.rcpt_to[0] for r in s.scalars(select(Outbox).where(Outbox.kind == "digest"))) == [
            "alice@example.test", "bob@example.test", "erin@example.test"]
    n, queued = gated("jane@customer.test")
    assert n == 3 and _logins(queued) == {"alice", "bob", "erin"}
