"""Internationalized addresses (RFC 6531/6532) end to end through real sockets: SMTPUTF8
into the daemon, a ticket, the acknowledgement out through a smarthost that offers
SMTPUTF8 (or a permanent delivery failure on the ticket when it does not), and threading
of the customer's reply."""

from __future__ import annotations

import smtplib
import socket

import pytest

from tests.support.servers import Sink, wait_until

SOREN = "søren@example.dk"
JAN = "jan@bücher.example"


def _mail(sender: str, name: str, subject: str, message_id: str, *, in_reply_to: str | None = None) -> bytes:
    """A message as an SMTPUTF8 mailer writes it: the address in raw UTF-8 (RFC 6532)."""
    lines = [f"From: {name} <{sender}>", "To: support@example.test", f"Subject: {subject}", f"Message-ID: {message_id}",
             "Date: Mon, 23 Nov 2026 09:00:00 +0000", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
             "Content-Transfer-Encoding: 8bit"]
    if in_reply_to:
        lines += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    return ("\r\n".join(lines) + "\r\n\r\nKaffemaskinen virker ikke. Hilsen fra Århus.\r\n").encode()


def _send_utf8(port: int, sender: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("smtputf8"), "the listener must offer SMTPUTF8"
        refused = smtp.sendmail(sender, ["support@example.test"], raw, mail_options=["SMTPUTF8"])
        assert refused == {}


@pytest.fixture
def utf8_sink():
    s = Sink(smtputf8=True)
    s.start()
    yield s
    s.stop()


def _head(envelope) -> list[str]:
    return envelope.original_content.split(b"\r\n\r\n", 1)[0].decode("utf-8").split("\r\n")


def test_utf8_sender_gets_a_ticket_an_smtputf8_ack_and_threads_a_reply(daemon_factory, utf8_sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{utf8_sink.port}")
    _send_utf8(d.port, SOREN, _mail(SOREN, "Søren Ørsted", "Kaffemaskine", "<k1@example.dk>"))
    tickets = wait_until(lambda: d.json("tickets", "list"), what="a ticket")
    assert [t["requester"] for t in tickets] == [SOREN]
    inbox = d.json("inbox", "list")
    assert [(r["status"], r["mail_from"]) for r in inbox] == [("processed", SOREN)]

    wait_until(lambda: utf8_sink.messages, what="the acknowledgement at the smarthost")
    ack = utf8_sink.messages[0]
    assert ack.smtp_utf8 and "SMTPUTF8" in ack.mail_options  # MAIL FROM:<…> SMTPUTF8
    assert ack.rcpt_tos == [SOREN]
    head = _head(ack)
    assert "To: =?utf-8?b?U8O4cmVuIMOYcnN0ZWQ=?= <søren@example.dk>" in head  # raw UTF-8 address, RFC 2047 name
    assert any(line.startswith("Subject: [MD-1]") for line in head)
    ack_id = next(line.split(": ", 1)[1] for line in head if line.startswith("Message-ID: "))

    _send_utf8(d.port, SOREN, _mail(SOREN, "Søren Ørsted", "Re: [MD-1] Kaffemaskine", "<k2@example.dk>", in_reply_to=ack_id))
    detail = wait_until(lambda: (t := d.json("tickets", "show", "MD-1")) and t["message_count"] >= 3 and t,
                        what="the reply on MD-1")
    customer = [m for m in detail["messages"] if m["direction"] == "in"]
    assert [(m["from"], m["verified"]) for m in customer] == [(SOREN, True), (SOREN, True)]
    assert customer[1]["message_id"] == "<k2@example.dk>"
    assert len(d.json("tickets", "list")) == 1
    assert all(r["status"] == "processed" for r in d.json("inbox", "list"))


def test_smarthost_without_smtputf8_is_a_permanent_delivery_failure_not_a_processing_failure(daemon, sink):
    _send_utf8(daemon.port, SOREN, _mail(SOREN, "Søren", "Kaffemaskine", "<k1@example.dk>"))
    # A non-ASCII domain alone goes out in its IDNA form: no SMTPUTF8 needed.
    _send_utf8(daemon.port, JAN, _mail(JAN, "Jan", "Bücher", "<b1@bücher.example>"))
    tickets = wait_until(lambda: len(ts := daemon.json("tickets", "list")) == 2 and ts, what="two tickets")
    assert sorted(t["requester"] for t in tickets) == ["jan@xn--bcher-kva.example", SOREN]
    soren = next(t for t in tickets if t["requester"] == SOREN)

    def failed():
        events = daemon.json("tickets", "show", soren["ref"])["events"]
        return [e for e in events if e["kind"] == "delivery_failed"]

    event = wait_until(failed, what="the delivery_failed event")[0]
    assert event["detail"]["to"] == [SOREN] and event["detail"]["kind"] == "ack"
    assert event["detail"]["error"].startswith(
        f"the recipient's address {SOREN} needs SMTPUTF8, which 127.0.0.1:{sink.port} does not offer")
    assert [r["status"] for r in daemon.json("inbox", "list")] == ["processed", "processed"]

    acks = wait_until(lambda: sink.messages, what="Jan's acknowledgement")
    assert [m.rcpt_tos for m in acks] == [["jan@xn--bcher-kva.example"]]
    assert not acks[0].smtp_utf8
    head = _head(acks[0])
    assert "To: Jan <jan@xn--bcher-kva.example>" in head and all(line.isascii() for line in head)
    outbox = daemon.json("outbox", "list")
    assert sorted(r["status"] for r in outbox) == ["failed", "sent"]



def test_listener_takes_smtputf8_addresses_and_refuses_invalid_utf8(daemon):
    """The SMTP dialogue by hand: a UTF-8 MAIL FROM with SMTPUTF8 is stored as it was sent; an
    address that is not UTF-8 gets 553 at once instead of a 451 on every retry."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        f = sock.makefile("rwb")

        def cmd(line: bytes) -> bytes:
            f.write(line + b"\r\n")
            f.flush()
            reply = f.readline()
            while reply[3:4] == b"-":
                reply = f.readline()
            return reply

        assert f.readline().startswith(b"220")
        assert cmd(b"EHLO client.test").startswith(b"250")
        assert cmd(b"MAIL FROM:<s\xffren@example.dk> SMTPUTF8").startswith(b"553 5.1.7")
        assert cmd(b"MAIL FROM:<" + SOREN.encode() + b"> SMTPUTF8").startswith(b"250")
        assert cmd(b"RCPT TO:<support+\xfe@example.test>").startswith(b"553 5.1.3")
        assert cmd(b"RCPT TO:<support@example.test>").startswith(b"250")
        assert cmd(b"DATA").startswith(b"354")
        assert cmd(_mail(SOREN, "Søren", "Hej", "<k9@example.dk>") + b".").startswith(b"250 2.0.0")
        assert cmd(b"QUIT").startswith(b"221")
    rows = wait_until(lambda: [r for r in daemon.json("inbox", "list") if r["status"] == "processed"], what="processing")
    assert [r["mail_from"] for r in rows] == [SOREN]
    assert [t["requester"] for t in daemon.json("tickets", "list")] == [SOREN]
