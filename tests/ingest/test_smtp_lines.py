"""Line ends and long lines through the real daemon: bare LF accepted and stored as CRLF,
dot-stuffing undone on LF lines, no SMTP smuggling past a fake end of data, and the
``[smtp] max_line_length`` refusal (raw bytes checked in the ``inbox`` table)."""

from __future__ import annotations

import smtplib
import socket
import sqlite3

import pytest

from tests.support.mail import make_mail
from tests.support.servers import wait_until


def inbox_rows(daemon) -> list[tuple]:
    with sqlite3.connect(daemon.config.parent / "var" / "maildesk.db") as db:
        return db.execute("SELECT mail_from, rcpt_to, r.raw FROM inbox JOIN inbox_raw r ON r.inbox_id = inbox.id ORDER BY id").fetchall()


def dialogue(port: int, data: bytes) -> list[bytes]:
    """EHLO, one transaction with ``data`` sent as it is after DATA (terminator included), QUIT; the replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"EHLO client.test\r\nMAIL FROM:<jane@customer.test>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n"
                     + data + b"QUIT\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return [line for line in received.split(b"\r\n") if line and line[3:4] != b"-"]


def test_smtplib_bytes_with_lf_lines_are_accepted_and_stored_as_crlf(daemon_factory):
    """``smtplib.sendmail(..., msg.as_bytes())`` sends LF line ends and stuffs dots after every LF."""
    d = daemon_factory()
    body = "".join(f"Line {i} of a long enough message to pass 1,000 octets.\n" for i in range(40))
    body += ".hidden starts with a dot\n..two dots\n" + "W" * 5000 + "\n"
    msg = make_mail(subject="LF only", body=body)
    raw = msg.as_bytes()
    assert b"\r\n" not in raw and len(raw) > 5000
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as smtp:
        assert smtp.sendmail("jane@customer.test", ["support@example.test"], raw) == {}
    [(mail_from, _, stored)] = inbox_rows(d)
    assert mail_from == "jane@customer.test"
    # smtplib ends LF data with an extra CRLF before the dot: one empty line more, as Postfix stores it
    assert stored == raw.replace(b"\n", b"\r\n") + b"\r\n"
    assert b"\r\n.hidden starts with a dot\r\n..two dots\r\n" in stored
    tickets = wait_until(lambda: d.json("tickets", "list"), what="a ticket")
    assert tickets[0]["subject"] == "LF only"


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r\n.\n", b"\n.\r\n"], ids=["lf-dot-lf", "crlf-dot-lf", "lf-dot-crlf"])
def test_a_fake_end_of_data_smuggles_nothing(daemon_factory, fake_end):
    d = daemon_factory()
    smuggled = (b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<billing@example.test>\r\nDATA\r\n"
                b"From: ceo@example.test\r\nSubject: smuggled\r\n\r\nPay them.\r\n")
    data = b"From: jane@customer.test\r\nSubject: first\r\n\r\nhello" + fake_end + smuggled + b".\r\n"
    replies = dialogue(d.port, data)
    assert [r[:3] for r in replies] == [b"220", b"250", b"250", b"250", b"354", b"250", b"221"], replies
    [(mail_from, rcpt_to, stored)] = inbox_rows(d)
    assert (mail_from, rcpt_to) == ("jane@customer.test", '["support@example.test"]')
    assert b"\r\nMAIL FROM:<ceo@example.test>\r\n" in stored and stored.endswith(b"Pay them.\r\n")


def test_lines_up_to_max_line_length_and_a_clear_refusal_beyond(daemon_factory):
    d = daemon_factory(smtp={"max_line_length": 2000})
    head = b"From: jane@customer.test\r\nSubject: long lines\r\n\r\n"
    replies = dialogue(d.port, head + b"A" * 2000 + b"\r\n" + b"B" * 2000 + b"\n\r\n.\r\n")
    assert replies[5].startswith(b"250 2.0.0"), replies
    replies = dialogue(d.port, head + b"C" * 2001 + b"\n\r\n.\r\n")
    assert replies[5].startswith(b"500 5.6.0 Line too long: a line of the message is over the 2000 octets"), replies
    assert [row[2] for row in inbox_rows(d)] == [head + b"A" * 2000 + b"\r\n" + b"B" * 2000 + b"\r\n\r\n"]
