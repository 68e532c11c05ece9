"""Threading (design section 3), in-process with a fixed clock: every reply finds its ticket."""

from __future__ import annotations

import base64
from email.utils import make_msgid

from maildesk.outgoing.mailbuild import continue_thread_index
from maildesk.outgoing.tokens import ReplyToken, make_address
from tests.support.desk import deliver, outbox_mails, ticket_json
from tests.support.mail import make_mail


def _open(desk, **kw):
    msg = make_mail(**kw)
    res = deliver(desk, msg)
    assert res.status == "processed" and res.ticket_id
    return res.ticket_id, msg


def test_new_message_opens_ticket_and_queues_one_ack(desk):
    number, msg = _open(desk, subject="Drucker druckt nicht")
    t = ticket_json(desk, number)
    assert t["status"] == "new" and t["requester"] == "jane@customer.test" and t["requester_name"] == "Jane Customer"
    assert [(m["direction"], m["kind"]) for m in t["messages"]] == [("in", "customer"), ("out", "autoreply")]
    assert t["messages"][0]["thread_via"] == "new"
    acks = outbox_mails(desk, "ack")
    assert len(acks) == 1
    assert acks[0]["Subject"] == f"[MD-{number}] Re: Drucker druckt nicht"
    assert acks[0]["In-Reply-To"] == msg["Message-ID"]


def test_reply_by_in_reply_to_of_ack(desk):
    number, _ = _open(desk)
    ack = outbox_mails(desk, "ack")[0]
    res = deliver(desk, make_mail(subject="Re: something else", in_reply_to=ack["Message-ID"]))
    assert res.ticket_id == number and "threaded by header" in res.text
    assert ticket_json(desk, number)["messages"][-1]["thread_via"] == "header"


def test_reply_by_references_to_customers_own_earlier_mail(desk):
    number, first = _open(desk)
    res = deliver(desk, make_mail(subject="more", references=f"<unknown@x> {first['Message-ID']}"))
    assert res.ticket_id == number


def test_reply_with_only_the_token_address(desk):
    number, _ = _open(desk)
    token_addr = make_address(desk.secret, "support@example.test", ReplyToken("t", number))
    res = deliver(desk, make_mail(subject="no headers at all", to=token_addr), rcpt=(token_addr,))
    assert res.ticket_id == number and "token" in res.text


def test_forged_token_is_ignored_and_recorded(desk):
    number, _ = _open(desk)
    good = make_address(desk.secret, "support@example.test", ReplyToken("t", number))
    local, domain = good.split("@")
    forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    other = make_address("another-secret", "support@example.test", ReplyToken("t", number))
    for bad in (forged, other):
        res = deliver(desk, make_mail(subject="trying", sender="mallory@evil.test", to=bad), rcpt=(bad,))
        assert res.ticket_id != number
        events = ticket_json(desk, res.ticket_id)["events"]
        assert any(e["kind"] == "security" and "does not verify" in e["detail"]["reason"] for e in events)


def test_subject_reference_only_for_participants(desk):
    number, _ = _open(desk, subject="VPN broken")
    res = deliver(desk, make_mail(subject=f"Re: [MD-{number}] VPN broken"))
    assert res.ticket_id == number and "subject" in res.text
    stranger = deliver(desk, make_mail(subject=f"Re: [MD-{number}] VPN broken", sender="eve@elsewhere.test"))
    assert stranger.ticket_id != number
    events = ticket_json(desk, stranger.ticket_id)["events"]
    assert any(e["kind"] == "security" and "not a participant" in e["detail"]["reason"] for e in events)


def test_cc_party_reply_all_threads(desk):
    number, _ = _open(desk, cc="Bob Colleague <bob@customer.test>")
    res = deliver(desk, make_mail(subject=f"Re: [MD-{number}] Printer on fire", sender="bob@customer.test"))
    assert res.ticket_id == number


def test_outlook_reply_with_thread_index_and_aw_prefix(desk):
    index = base64.b64encode(bytes([1, 0xDB, 0x59, 0xD5, 0xAD, 0x9B]) + bytes(range(16))).decode()  # 22-byte header
    number, _ = _open(desk, subject="Drucker", headers={"Thread-Topic": "Drucker", "Thread-Index": index})
    ack = outbox_mails(desk, "ack")[0]
    assert ack["Thread-Topic"] == "Drucker"
    continued = base64.b64decode(ack["Thread-Index"])
    assert continued[:22] == base64.b64decode(index) and len(continued) == 27  # one 5-byte child block
    reply_index = continue_thread_index(str(ack["Thread-Index"]))
    reply = make_mail(subject=f"AW: [MD-{number}] Re: Drucker", headers={"Thread-Topic": "Drucker", "Thread-Index": reply_index})
    assert deliver(desk, reply).ticket_id == number


def test_gmail_style_reply_threads_by_references(desk):
    number, first = _open(desk)
    ack = outbox_mails(desk, "ack")[0]
    reply = make_mail(subject=f"Re: [MD-{number}] Re: Printer on fire", in_reply_to=ack["Message-ID"],
                      references=f"{first['Message-ID']} {ack['Message-ID']}")
    assert deliver(desk, reply).ticket_id == number


def test_prefixes_do_not_pile_up(desk):
    _open(desk, subject="AW: Ответ: Re: Drucker")
    assert outbox_mails(desk, "ack")[0]["Subject"].endswith("] Re: Drucker")


def test_same_message_id_twice_is_stored_once(desk):
    msg = make_mail()
    first = deliver(desk, msg, rcpt=("support@example.test",))
    copy = b"Received: from mx2.example.test by imap.example.test; Mon, 23 Nov 2026 09:00:05 +0000\r\n" + msg.as_bytes()
    again = deliver(desk, copy, rcpt=("billing@example.test",), source="imap:support")
    assert again.status == "duplicate" and again.ticket_id == first.ticket_id
    assert len(ticket_json(desk, first.ticket_id)["messages"]) == 2  # customer mail + ack
    assert len(outbox_mails(desk, "ack")) == 1


def test_reply_reopens_resolved_and_pending(desk):
    from maildesk.storage.models import Ticket

    number, _ = _open(desk)
    ack = outbox_mails(desk, "ack")[0]
    for status in ("pending", "resolved"):
        with desk.store.transaction() as s:
            s.get(Ticket, number).status = status
        deliver(desk, make_mail(subject=f"Re: [MD-{number}] still broken", in_reply_to=ack["Message-ID"]))
        assert ticket_json(desk, number)["status"] == "open"


def test_unverified_mail_reopens_pending_but_not_resolved(desk):
    """The subject reference proves nothing: a pending ticket opens (the customer is not left
    to be closed as silent), a resolved one stays resolved (its survey is the customer's)."""
    from maildesk.storage.models import Ticket

    number, _ = _open(desk)
    for status, after in (("pending", "open"), ("resolved", "resolved")):
        with desk.store.transaction() as s:
            s.get(Ticket, number).status = status
        deliver(desk, make_mail(subject=f"Re: [MD-{number}] still broken"))
        detail = ticket_json(desk, number)
        assert detail["status"] == after
        assert detail["messages"][-1]["kind"] == "unverified" and not detail["messages"][-1]["verified"]


def test_reply_to_closed_ticket_opens_linked_follow_up(desk):
    from maildesk.storage.models import Ticket

    number, _ = _open(desk)
    with desk.store.transaction() as s:
        s.get(Ticket, number).status = "closed"
    res = deliver(desk, make_mail(subject=f"Re: [MD-{number}] it is back"))
    assert res.ticket_id != number
    follow = ticket_json(desk, res.ticket_id)
    assert follow["parent"] == f"MD-{number}"
    assert any(e["kind"] == "follow_up" for e in ticket_json(desk, number)["events"])


def test_our_own_mail_seen_again_opens_nothing(desk):
    number, _ = _open(desk)
    ack_raw = outbox_mails(desk, "ack")[0].as_bytes()
    res = deliver(desk, ack_raw, mail_from="support@example.test", source="imap:sent")
    assert res.ticket_id == number and "our own" in res.text
    assert len(ticket_json(desk, number)["messages"]) == 2


def test_unknown_in_reply_to_opens_new_ticket(desk):
    res = deliver(desk, make_mail(in_reply_to=make_msgid(domain="nowhere.test")))
    assert res.status == "processed" and res.ticket_id == 1


def test_attachment_over_the_limit_is_refused_but_the_message_kept(tmp_path, clock):
    from maildesk.config.load import load_config
    from maildesk.daemon.build import build_desk
    from tests.support.config import write_config
    from tests.support.servers import free_port

    desk = build_desk(load_config(write_config(tmp_path, port=free_port(), max_attachment_size=1000)), clock=clock)
    desk.store.upgrade()
    msg = make_mail(subject="two files")
    msg.add_attachment(b"x" * 500, maintype="text", subtype="plain", filename="small.txt")
    msg.add_attachment(b"y" * 5000, maintype="application", subtype="octet-stream", filename="big.bin")
    res = deliver(desk, msg)
    t = ticket_json(desk, res.ticket_id)
    assert [a["filename"] for a in t["messages"][0]["attachments"]] == ["small.txt"]
    refused = [e for e in t["events"] if e["kind"] == "attachment_refused"]
    assert refused[0]["detail"]["filename"] == "big.bin" and "inbox 1" in refused[0]["detail"]["hint"]
    desk.store.dispose()
