"""End to end through real sockets: SMTP into the real daemon, acknowledgement to an aiosmtpd sink."""

from __future__ import annotations

import smtplib

import pytest

from tests.support.mail import make_mail, send
from tests.support.servers import wait_until


def test_mail_becomes_ticket_with_exact_subject_and_ack(daemon, sink):
    subject = "Принтер не печатает"
    msg = make_mail(subject=subject, body="Помогите, пожалуйста")
    send(daemon.port, msg)
    tickets = wait_until(lambda: daemon.json("tickets", "list"), what="a ticket")
    assert len(tickets) == 1
    t = tickets[0]
    assert t["subject"] == subject
    assert t["ref"] == "MD-1" and t["number"] == 1
    assert t["status"] == "new" and t["priority"] == "normal"
    assert t["requester"] == "jane@customer.test"
    for key in ("assignee", "team", "tags", "created_at", "updated_at", "message_count"):
        assert key in t
    ack = sink.wait_for(lambda m: "[MD-1]" in m["Subject"])[0]
    assert ack["Subject"] == f"[MD-1] Re: {subject}"
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Auto-Response-Suppress"] == "All"
    assert ack["In-Reply-To"] == msg["Message-ID"]
    assert msg["Message-ID"] in ack["References"]
    assert ack["Reply-To"].addresses[0].username.startswith("support+t1-")
    assert sink.messages[0].rcpt_tos == ["jane@customer.test"]
    body = ack.get_body(("plain",)).get_content()
    assert "Jane Customer" in body and "MD-1" in body
    html = ack.get_body(("html",)).get_content()
    assert "MD-1" in html and "<p>" in html


def test_unknown_recipient_gets_550(daemon):
    with daemon.smtp() as smtp:
        smtp.ehlo()
        smtp.mail("jane@customer.test")
        code, text = smtp.rcpt("nobody@example.test")
        assert code == 550 and b"5.1.1" in text
        code, _ = smtp.rcpt("support+anything@example.test")
        assert code == 250


def test_too_large_message_gets_552(daemon):
    big = make_mail(body="x" * 100 + "\n" + ("y" * 76 + "\n") * 30000)  # ~2.3 MB > 2 MB limit
    with pytest.raises(smtplib.SMTPException) as info:
        send(daemon.port, big)
    assert "552" in str(info.value)
    assert daemon.json("inbox", "list") == []


def test_sigkill_right_after_250_loses_nothing(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}")
    ids = []
    with d.smtp() as smtp:
        for i in range(30):
            msg = make_mail(subject=f"kill test {i}", sender=f"user{i}@customer.test")
            smtp.send_message(msg)
            ids.append(msg["Message-ID"])
    d.kill()  # no chance to finish anything
    rows = d.json("inbox", "list", "--limit", "1000")
    assert len(rows) == 30
    d.start()
    tickets = wait_until(lambda: (t := d.json("tickets", "list")) and len(t) == 30 and t, what="30 tickets")
    assert sorted(t["subject"] for t in tickets) == sorted(f"kill test {i}" for i in range(30))
    assert len({t["number"] for t in tickets}) == 30
    sink.wait_for(lambda m: "[MD-" in m["Subject"], count=30)


def test_sigterm_stops_cleanly_and_keeps_pending(daemon):
    send(daemon.port, make_mail())
    assert daemon.stop() == 0
    assert "stopped cleanly" in daemon.log.read_text()
    rows = daemon.json("inbox", "list")
    assert len(rows) == 1 and rows[0]["status"] in ("pending", "processed")


def test_logs_redact_addresses_at_info(daemon, sink):
    send(daemon.port, make_mail(subject="privacy please"))
    sink.wait_for(lambda m: "[MD-1]" in m["Subject"])
    wait_until(lambda: "sent outbox=1" in daemon.log.read_text(), what="delivery logged")
    log = daemon.log.read_text()
    assert "j***@customer.test" in log and "jane@customer.test" not in log
    assert "processed: new ticket MD-1" in log  # one line per processed message, with the reference


def test_attachment_near_the_size_limit_is_kept_intact(daemon):
    import hashlib
    import os

    data = os.urandom(1_400_000)  # base64 makes it ~1.9 MB of the 2 MB limit
    msg = make_mail(subject="big log file")
    msg.add_attachment(data, maintype="application", subtype="gzip", filename="logs.tar.gz")
    assert 1_800_000 < len(msg.as_bytes()) < 2_000_000
    send(daemon.port, msg)
    t = wait_until(lambda: (ts := daemon.json("tickets", "list")) and ts[0], what="ticket")
    att = daemon.json("tickets", "show", t["ref"])["messages"][0]["attachments"]
    assert att == [{"filename": "logs.tar.gz", "content_type": "application/gzip", "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest()}]
