"""maildesk.outgoing.mailer: what queue_mail builds about a ticket, header by header.

Every mail gets our Message-ID (its random part also in its own signed envelope sender),
the signed Reply-To token, the loop and ticket headers, RFC 3834 headers when automatic,
and threading headers continuing the customer's conversation. Values that come from mail
(a subject, a name) cannot add header lines; non-ASCII is encoded and decodes back.
Real SQLite stores (the ``desk`` fixture); mail leaves to the real sink.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from types import SimpleNamespace

from sqlalchemy import func, select

from maildesk.config.load import OutboundConfig
from maildesk.outgoing.deliver import SmtpDeliverer
from maildesk.outgoing.mailer import last_customer_message, queue_mail, thread_refs
from maildesk.outgoing.outbox import drain
from maildesk.outgoing.tokens import ReplyToken, verify_bounce, verify_token
from maildesk.storage.models import Outbox, Ticket, TicketMessage
from maildesk.storage.writer import Writer
from tests.support.desk import deliver
from tests.support.mail import encoded_word, make_mail


def _open(desk, subject="Printer on fire", sender="Jane Customer <jane@customer.test>", message_id=None) -> int:
    return deliver(desk, make_mail(subject=subject, sender=sender, message_id=message_id)).ticket_id


def _queue(desk, number: int, *, subject: str | None = None, **kwargs):
    """queue_mail an agent's reply on ticket ``number`` (``subject`` replaces the ticket's first);
    returns the Queued result, the outbox row and the parsed mail."""
    args = {"kind": "reply", "template": "agent_reply", "to": [("Jane Customer", "jane@customer.test")], "auto": False,
            "extra": {"text": "We sent a technician.", "agent_name": "Alice"}, **kwargs}
    with desk.store.transaction() as s:
        ticket = s.get(Ticket, number)
        if subject is not None:
            ticket.subject = subject
        if "answering" not in args:
            last = last_customer_message(s, number)
            args["answering"] = last.message_id if last else None
        queued = queue_mail(Writer(s), desk.mail, ticket, now=desk.clock(), **args)
    with desk.store.read() as s:
        o = s.scalars(select(Outbox).where(Outbox.message_id == queued.message_id)).one()
        row = SimpleNamespace(raw=o.raw, mail_from=o.mail_from, rcpt_to=list(o.rcpt_to), kind=o.kind, ticket_id=o.ticket_id)
    return queued, row, message_from_bytes(row.raw, policy=policy.default)


def _head(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def _names(raw: bytes) -> list[str]:
    """Header names at the top level, in order (continuation lines belong to the header above)."""
    return [line.split(b":", 1)[0].decode() for line in _head(raw).split(b"\r\n") if line and line[:1] not in (b" ", b"\t")]


def test_headers_of_a_reply(desk):
    number = _open(desk, message_id="<jane-1@customer.test>")
    queued, row, mail = _queue(desk, number, agent="alice", cc=[("", "boss@customer.test")],
                               from_name="Alice via Example Support")
    assert str(mail["From"]) == "Alice via Example Support <support@example.test>"
    assert str(mail["To"]) == "Jane Customer <jane@customer.test>" and str(mail["Cc"]) == "boss@customer.test"
    assert str(mail["Subject"]) == f"[MD-{number}] Re: Printer on fire"
    assert mail["Message-ID"] == queued.message_id
    key, domain = re.fullmatch(r"<([^@>]+)@([^>]+)>", queued.message_id).groups()
    assert domain == "example.test"
    assert mail["In-Reply-To"] == "<jane-1@customer.test>" and mail["References"] == "<jane-1@customer.test>"
    assert mail["X-Maildesk-Ticket"] == f"MD-{number}" and mail["X-Maildesk-Loop"] == desk.loop_id
    assert mail["Auto-Submitted"] is None and mail["Precedence"] is None  # a person's answer is not automatic
    reply_to = mail["Reply-To"].addresses[0]
    assert reply_to.display_name == "Alice via Example Support" and reply_to.domain == "example.test"
    assert verify_token(desk.secret, reply_to.username.split("+", 1)[1]) == ReplyToken("t", number, "alice")
    # the envelope: its own signed bounce address naming the Message-ID's random part; To and Cc are recipients
    assert verify_bounce(desk.secret, row.mail_from.split("@")[0].split("+", 1)[1]) == key
    assert row.rcpt_to == ["jane@customer.test", "boss@customer.test"] and row.kind == "reply" and row.ticket_id == number
    assert _names(row.raw).count("Subject") == 1 and _names(row.raw).count("Message-ID") == 1
    with desk.store.read() as s:  # recorded on the ticket, with the same Message-ID
        (recorded,) = s.scalars(select(TicketMessage).where(TicketMessage.message_id == queued.message_id)).all()
        assert (recorded.ticket_id, recorded.direction, recorded.kind) == (number, "out", "reply")
        assert recorded.text.startswith("We sent a technician.") and recorded.subject == str(mail["Subject"])


def test_automatic_mail_carries_rfc3834_headers_and_an_unrecorded_one_stays_off_the_ticket(desk):
    number = _open(desk)
    with desk.store.read() as s:
        before = s.scalar(select(func.count()).select_from(TicketMessage).where(TicketMessage.ticket_id == number))
    queued, _, mail = _queue(desk, number, auto=True, record=False, headers={"X-Maildesk-Event": "test"})
    assert (mail["Auto-Submitted"], mail["X-Auto-Response-Suppress"], mail["Precedence"]) == ("auto-replied", "All", "auto_reply")
    assert mail["X-Maildesk-Event"] == "test"
    assert queued.message is None
    assert verify_token(desk.secret, mail["Reply-To"].addresses[0].username.split("+", 1)[1]) == ReplyToken("t", number, None)
    with desk.store.read() as s:
        assert s.scalar(select(func.count()).select_from(TicketMessage).where(TicketMessage.ticket_id == number)) == before


def test_references_keep_the_first_and_the_last_eight_and_end_with_the_answered_one(desk):
    number = _open(desk, subject="Long thread", sender="jane@customer.test", message_id="<m0@customer.test>")
    for i in range(1, 12):
        deliver(desk, make_mail(subject="Re: [MD-1] Long thread", body=f"Reply {i}", sender="jane@customer.test",
                                message_id=f"<m{i}@customer.test>", in_reply_to=f"<m{i - 1}@customer.test>"))
    with desk.store.read() as s:
        ticket = s.get(Ticket, number)
        assert thread_refs(s, ticket, "<m5@customer.test>") == tuple(
            f"<m{i}@customer.test>" for i in (0, 3, 4, 6, 7, 8, 9, 10, 11, 5))  # m5 moved to the end, not twice
        assert thread_refs(s, ticket, None)[-1] == "<m11@customer.test>"
    _, _, mail = _queue(desk, number, answering="<m5@customer.test>")
    assert mail["In-Reply-To"] == "<m5@customer.test>"
    assert mail["References"].split() == [f"<m{i}@customer.test>" for i in (0, 3, 4, 6, 7, 8, 9, 10, 11, 5)]


def test_crlf_in_a_subject_or_a_name_adds_no_header(desk):
    # the customer's subject, an RFC 2047 word hiding CR LF and a Bcc line, as stored from a real mail
    number = _open(desk, subject=encoded_word("Help\r\nBcc: evil@attacker.test"))
    with desk.store.read() as s:
        stored = s.get(Ticket, number).subject
    for subject in (stored, "Help\r\nBcc: evil@attacker.test\r\n\r\nfake body", "Help\nX-Evil: 1\rX-Evil2: 2"):
        _, row, mail = _queue(desk, number, subject=subject, to=[("Jane\r\nBcc: evil2@attacker.test", "jane@customer.test")],
                              from_name="Alice\r\nX-Evil-From: 1")
        names = _names(row.raw)
        assert not {"Bcc", "X-Evil", "X-Evil2", "X-Evil-From"} & set(names), names
        assert b"\r\nBcc:" not in _head(row.raw) and b"\nX-Evil" not in _head(row.raw)
        assert "\r" not in str(mail["Subject"]) and "\n" not in str(mail["Subject"])
        assert "Help" in str(mail["Subject"]) and [a.addr_spec for a in mail["To"].addresses] == ["jane@customer.test"]
        assert mail.get_body(("plain",)).get_content().lstrip().startswith("We sent a technician.")  # the body is not what the subject said
        assert row.rcpt_to == ["jane@customer.test"]


def test_non_ascii_subject_and_names_are_encoded_and_decode_back(desk, sink):
    subject = "Drucker läuft nicht – Grüße aus Köln 😀"
    number = _open(desk, subject=subject, sender="Jörg Müller <joerg@customer.test>")
    _, row, mail = _queue(desk, number, to=[("Jörg Müller", "joerg@customer.test")], from_name="Zoë via Example Support")
    assert _head(row.raw).isascii()  # RFC 2047 words: no SMTPUTF8 needed for ASCII addresses
    assert str(mail["Subject"]) == f"[MD-{number}] Re: {subject}"
    assert mail["To"].addresses[0].display_name == "Jörg Müller" and mail["From"].addresses[0].display_name == "Zoë via Example Support"

    assert drain(desk.store, SmtpDeliverer("127.0.0.1", sink.port), OutboundConfig(smarthost=f"127.0.0.1:{sink.port}"), desk.clock).failed == 0
    (got,) = sink.wait_for(lambda m: m["Message-ID"] == mail["Message-ID"])
    assert str(got["Subject"]) == f"[MD-{number}] Re: {subject}" and got["To"].addresses[0].display_name == "Jörg Müller"
    envelope = next(e for e in sink.messages if e.original_content == row.raw or mail["Message-ID"].encode() in e.original_content)
    assert envelope.mail_from == row.mail_from and envelope.rcpt_tos == ["joerg@customer.test"]


def test_an_idn_recipient_goes_out_in_its_ascii_form(desk):
    number = _open(desk)
    _, row, mail = _queue(desk, number, to=[("Jan", "jan@bücher.example")])
    assert [a.addr_spec for a in mail["To"].addresses] == ["jan@xn--bcher-kva.example"]
    assert _head(row.raw).isascii()
