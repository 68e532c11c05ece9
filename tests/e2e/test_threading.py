"""Issue scenarios through real sockets: replies, loops, bounces and a flaky smarthost."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid

from tests.support.mail import make_mail, send
from tests.support.servers import Sink, free_port, wait_until


def _tickets(d, n):
    return wait_until(lambda: (t := d.json("tickets", "list")) and len(t) >= n and t, what=f"{n} ticket(s)")


def _messages(d, ref):
    return d.json("tickets", "show", ref)["messages"]


def test_replies_find_their_ticket(daemon, sink):
    first = make_mail(subject="Laptop will not boot")
    send(daemon.port, first)
    ack = sink.wait_for(lambda m: "[MD-1]" in m["Subject"])[0]

    # 1. only In-Reply-To of the acknowledgement
    send(daemon.port, make_mail(subject="answer", in_reply_to=ack["Message-ID"]))
    # 2. no threading headers, but sent to the signed Reply-To address
    token = ack["Reply-To"].addresses[0].addr_spec
    send(daemon.port, make_mail(subject="no headers", to=token))
    # 3. only the subject reference, from the requester
    send(daemon.port, make_mail(subject="Re: [MD-1] Laptop will not boot"))
    # 4. same subject reference from a stranger: a new ticket
    send(daemon.port, make_mail(subject="Re: [MD-1] Laptop will not boot", sender="eve@stranger.test"))
    tickets = _tickets(daemon, 2)
    wait_until(lambda: len(_messages(daemon, "MD-1")) == 5, what="4 customer mails + ack on MD-1")
    vias = [m["thread_via"] for m in _messages(daemon, "MD-1") if m["direction"] == "in"]
    assert vias == ["new", "header", "token", "subject"]
    assert {t["requester"] for t in tickets} == {"jane@customer.test", "eve@stranger.test"}
    # Order and content of `tickets show MD-1 --json`
    kinds = [(m["direction"], m["kind"]) for m in _messages(daemon, "MD-1")]
    assert kinds[:2] == [("in", "customer"), ("out", "autoreply")]


def test_outlook_and_gmail_replies(daemon, sink):
    send(daemon.port, make_mail(subject="Drucker kaputt", sender="Max <max@firma.test>",
                                headers={"Thread-Topic": "Drucker kaputt", "Thread-Index": "AdtZ1a2bAAECAwQFBgcICQoLDA0ODw=="}))
    ack = sink.wait_for(lambda m: "[MD-1]" in m["Subject"])[0]
    assert ack["Thread-Topic"] == "Drucker kaputt" and ack["Thread-Index"].startswith("AdtZ1a2bAAECAwQFBgcICQoLDA0OD")
    # Outlook: no In-Reply-To, "AW:" prefix, Thread-Index continued
    send(daemon.port, make_mail(subject="AW: [MD-1] Re: Drucker kaputt", sender="Max <max@firma.test>",
                                headers={"Thread-Topic": "Drucker kaputt", "Thread-Index": str(ack["Thread-Index"]) + "AAAAAAA="}))
    # Gmail: In-Reply-To and References, "Re:" prefix
    send(daemon.port, make_mail(subject="Re: [MD-1] Re: Drucker kaputt", sender="Max <max@firma.test>",
                                in_reply_to=ack["Message-ID"], references=f"<x@firma.test> {ack['Message-ID']}"))
    wait_until(lambda: len(_messages(daemon, "MD-1")) == 4, what="both replies on MD-1")
    assert len(daemon.json("tickets", "list")) == 1


def test_two_helpdesks_mailing_each_other_stop(daemon_factory):
    port_a, port_b = free_port(), free_port()
    a = daemon_factory(smarthost=f"127.0.0.1:{port_b}", addresses=["support@a.test"])
    b = daemon_factory(smarthost=f"127.0.0.1:{port_a}", addresses=["support@b.test"])
    # daemon_factory picks its own ports: point each at the other's real port
    for d, other in ((a, b), (b, a)):
        text = d.config.read_text().replace(f"127.0.0.1:{port_a if d is b else port_b}", f"127.0.0.1:{other.port}")
        d.stop()
        d.config.write_text(text)
        d.start()
    # A customer-looking mail to A that claims to come from B's support address (a forged first hop).
    send(a.port, make_mail(subject="hello from b", sender="support@b.test", to="support@a.test"),
         mail_from="someone@b.test")
    # A acknowledges once; B receives that acknowledgement, keeps it, and does not answer it.
    wait_until(lambda: (o := a.json("outbox", "list")) and o[0]["status"] == "sent", what="A's ack sent to B")
    b_ticket = wait_until(lambda: b.json("tickets", "list"), what="B stored A's ack")[0]
    assert b_ticket["requester"] == "support@a.test"
    events = b.json("tickets", "show", b_ticket["ref"])["events"]
    assert any(e["kind"] == "autoreply_suppressed" and "Auto-Submitted" in e["detail"]["reason"] for e in events)
    time.sleep(2)
    assert len(a.json("outbox", "list")) == 1 and b.json("outbox", "list") == []  # no ping-pong


def test_naive_autoresponder_is_capped_by_rate_limit(daemon_factory):
    """A bot that answers every mail with a brand-new mail (no auto headers): at most 3 acks per hour."""
    maildesk_port = free_port()
    received = []

    class Bot:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            reply = make_mail(subject=f"Out of office {len(received)}", sender="bot@customer.test")
            try:
                with smtplib.SMTP("127.0.0.1", maildesk_port, timeout=10) as s:
                    s.send_message(reply)
            except OSError:
                pass
            return "250 OK"

    from aiosmtpd.controller import Controller

    bot_port = free_port()
    ctl = Controller(Bot(), hostname="127.0.0.1", port=bot_port)
    ctl.start()
    try:
        d = daemon_factory(smarthost=f"127.0.0.1:{bot_port}")
        text = d.config.read_text().replace(f"port = {d.port}", f"port = {maildesk_port}")
        d.stop()
        d.config.write_text(text)
        d.port = maildesk_port
        d.start()
        send(maildesk_port, make_mail(subject="first", sender="bot@customer.test"))
        wait_until(lambda: len(received) >= 3, what="three acks at the bot")
        time.sleep(3)
        assert len(received) == 3
        tickets = d.json("tickets", "list")
        assert len(tickets) == 4  # every mail is kept as a ticket
        events = d.json("tickets", "show", f"MD-{max(t['number'] for t in tickets)}")["events"]
        assert any(e["kind"] == "autoreply_suppressed" and "rate limit" in e["detail"]["reason"] for e in events)
    finally:
        ctl.stop()


def test_dsn_for_our_mail_attaches_to_ticket_and_marks_bounced(daemon, sink):
    send(daemon.port, make_mail(subject="Where is my order", sender="gone@customer.test"))
    ack = sink.wait_for(lambda m: "[MD-1]" in m["Subject"])[0]
    dsn = EmailMessage()
    dsn["From"] = "Mail Delivery System <MAILER-DAEMON@mx.customer.test>"
    dsn["To"] = "support@example.test"
    dsn["Subject"] = "Undelivered Mail Returned to Sender"
    dsn["Message-ID"] = make_msgid(domain="mx.customer.test")
    dsn["Auto-Submitted"] = "auto-replied"
    dsn.set_content("This is the mail system. Your message could not be delivered.")
    status = EmailMessage()
    status.set_payload("Reporting-MTA: dns; mx.customer.test\n\nFinal-Recipient: rfc822; gone@customer.test\n"
                       "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n")
    dsn.add_attachment(ack.as_bytes(), maintype="message", subtype="rfc822")
    raw = dsn.as_bytes()
    # assemble a proper multipart/report by hand (the email package has no builder for it)
    boundary = "dsn-boundary-1"
    report = (f"From: {dsn['From']}\r\nTo: support@example.test\r\nSubject: {dsn['Subject']}\r\nMessage-ID: {dsn['Message-ID']}\r\n"
              f"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
              f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n"
              f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
              f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
              f"Reporting-MTA: dns; mx.customer.test\r\n\r\nFinal-Recipient: rfc822; gone@customer.test\r\n"
              f"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
              f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
              f"Message-ID: {ack['Message-ID']}\r\nSubject: {ack['Subject']}\r\n\r\n--{boundary}--\r\n").encode()
    assert raw
    # the report goes back to the ack's own signed envelope sender (VERP): only there is it believed
    envelope = next(e for e in sink.messages if ack["Message-ID"].encode() in e.original_content)
    assert envelope.mail_from.startswith("support+b")
    with smtplib.SMTP("127.0.0.1", daemon.port) as s:
        s.sendmail("", [envelope.mail_from], report)
    wait_until(lambda: any(m["kind"] == "system" for m in _messages(daemon, "MD-1")), what="bounce note")
    assert len(daemon.json("tickets", "list")) == 1
    assert daemon.json("outbox", "list")[0]["status"] == "bounced"
    assert any(e["kind"] == "bounce" for e in daemon.json("tickets", "show", "MD-1")["events"])
    # the address is now suppressed: a new mail from it gets no acknowledgement
    send(daemon.port, make_mail(subject="another", sender="gone@customer.test"))
    _tickets(daemon, 2)
    events = wait_until(lambda: [e for e in daemon.json("tickets", "show", "MD-2")["events"] if e["kind"] == "autoreply_suppressed"],
                        what="suppression event")
    assert "suppressed" in events[0]["detail"]["reason"]


def test_smarthost_down_delays_but_never_loses_the_ack(daemon_factory):
    port = free_port()
    d = daemon_factory(smarthost=f"127.0.0.1:{port}")
    send(d.port, make_mail(subject="are you there"))
    wait_until(lambda: (o := d.json("outbox", "list")) and o[0]["attempts"] >= 2, what="two failed attempts")
    row = d.json("outbox", "list")[0]
    assert row["status"] == "queued" and "Connection refused" in row["last_error"]
    d.stop()  # and it survives a restart
    d.start()
    late = Sink(port)
    late.start()
    try:
        acks = late.wait_for(lambda m: "[MD-1]" in m["Subject"], timeout=20)
        assert len(acks) == 1
        time.sleep(1)
        assert len(late.messages) == 1
        assert d.json("outbox", "list")[0]["status"] == "sent"
    finally:
        late.stop()
