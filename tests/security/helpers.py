"""Shared pieces of the security suite: the desk's config (agents, [auth], a strong secret),
the attacker's and the agents' mails, and questions asked of the sink and the CLI.

Everything here drives the real daemon through SMTP and reads its state through the
``maildesk`` CLI's JSON output (the contract in docs/security.md), never through its
internals.
"""

from __future__ import annotations

import json
import re
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from tests.support.agents import ALICE, BOB, CAROL, agents_toml
from tests.support.mail import make_mail
from tests.support.servers import wait_until

__all__ = ["AGENTS", "SECRET", "agent_reply", "all_events", "auth_section", "bounce_report", "delivered", "envelopes_to", "inbox", "mailed_to",
           "notification_for", "send_many", "settle", "show", "strong_secret", "text_of", "to"]

# One place for the test secret: at least 32 characters and not repetitive ([mail] secret contract).
SECRET = "test-secret-not-for-production-0123456789"
_SECRET_LINE = re.compile(r'^secret = ".*"$', re.M)

AGENTS = agents_toml(ALICE, BOB, CAROL)  # carol, of another domain, is an agent too


def strong_secret(config_text: str, secret: str = SECRET) -> str:
    """``config_text`` with its ``[mail] secret`` line replaced (write_config writes its own)."""
    text, n = _SECRET_LINE.subn(f"secret = {json.dumps(secret)}", config_text, count=1)
    assert n == 1, "write_config no longer writes a secret line; update tests/security/helpers.py"
    return text


def auth_section(**keys) -> str:
    """An ``[auth]`` table for write_config(extra=...), e.g. auth_section(trusted_authserv_ids=["mx.example.test"])."""
    return "[auth]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())


def to(addr: str):
    return lambda m: any(a.addr_spec == addr for a in m["To"].addresses)


def mailed_to(m, addr: str) -> bool:
    """``addr`` is in the mail's To or Cc header."""
    return any(a.addr_spec == addr for h in ("To", "Cc") if m[h] for a in m[h].addresses)


def envelopes_to(sink, addr: str) -> list:
    """Every envelope the sink received with ``addr`` among its RCPT TO (what really reached them)."""
    with sink.cond:
        return [e for e in sink.messages if addr.lower() in (r.lower() for r in e.rcpt_tos)]


def text_of(m) -> str:
    """All text/* parts of a parsed mail, decoded, joined."""
    return "\n".join(p.get_content() for p in m.walk() if p.get_content_maintype() == "text")


def notification_for(sink, login: str, ref: str = "MD-1", event: str | None = None, count: int = 1):
    def match(m):
        return to(f"{login}@example.test")(m) and f"[{ref}]" in m["Subject"] and (event is None or m["X-Maildesk-Event"] == event)
    return sink.wait_for(match, count=count)[-1]


def agent_reply(notification, login: str, body: str, **kw) -> EmailMessage:
    """The agent answers a notification from a plain-text client: to its signed Reply-To, quoting it below."""
    token = notification["Reply-To"].addresses[0].addr_spec
    quoted = notification.get_body(("plain",)).get_content()
    text = f"{body}\n\nOn Mon, Nov 23, 2026 at 10:00 AM Example Support <support@example.test> wrote:\n" + \
           "\n".join("> " + line for line in quoted.splitlines())
    return make_mail(subject=f"Re: {notification['Subject']}", body=text, sender=f"{login.title()} <{login}@example.test>",
                     to=token, in_reply_to=notification["Message-ID"], **kw)


def show(d, ref: str = "MD-1") -> dict:
    return d.json("tickets", "show", ref)


def inbox(d) -> list[dict]:
    return d.json("inbox", "list", "--limit", "5000")


def settle(d, count: int) -> list[dict]:
    """Wait until ``count`` inbox rows exist and none is still pending; returns them (newest first)."""
    return wait_until(lambda: (rows := inbox(d)) and len(rows) >= count and all(r["status"] != "pending" for r in rows) and rows,
                      what=f"{count} inbox row(s) processed")


def all_events(d) -> list[dict]:
    """Every event on every ticket, each with the ticket's ref under "ticket"."""
    out = []
    for t in d.json("tickets", "list", "--limit", "5000"):
        out += [{**e, "ticket": t["ref"]} for e in show(d, t["ref"])["events"]]
    return out


def send_many(port: int, mails, *, mail_from: str | None = None, rcpt: list[str] | None = None) -> None:
    """Several mails in one SMTP session (an attacker's script does not reconnect for each)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for m in mails:
            if isinstance(m, bytes):
                smtp.sendmail(mail_from or "", rcpt or ["support@example.test"], m)
            else:
                smtp.send_message(m, from_addr=mail_from, to_addrs=rcpt)


def bounce_report(*, final_recipient: str, original_message_id: str | None, original_subject: str = "[MD-1] Re: Printer on fire",
                  rcpt: str = "support@example.test", text: str = "Your message could not be delivered.",
                  reporting_mta: str = "mx.customer.test") -> bytes:
    """An RFC 3464 delivery status notification (multipart/report) as raw bytes, written by hand:
    the email package has no builder for it. ``original_message_id`` goes into the returned headers part."""
    boundary = "dsn-boundary-" + make_msgid().strip("<>").split("@")[0].replace(".", "")
    original = (f"Message-ID: {original_message_id}\r\n" if original_message_id else "") + f"Subject: {original_subject}\r\n"
    return (f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>\r\nTo: {rcpt}\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {make_msgid(domain=reporting_mta)}\r\n"
            f"Date: Mon, 23 Nov 2026 09:05:00 +0000\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; {reporting_mta}\r\n\r\nFinal-Recipient: rfc822; {final_recipient}\r\n"
            f"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{original}\r\n--{boundary}--\r\n").encode()


def delivered(sink, predicate) -> list[tuple]:
    """(envelope, parsed mail) for each mail at the sink matching ``predicate``: the envelope says who really got it."""
    from email import message_from_bytes, policy

    with sink.cond:
        envelopes = list(sink.messages)
    pairs = [(e, message_from_bytes(e.original_content, policy=policy.default)) for e in envelopes]
    return [(e, m) for e, m in pairs if predicate(m)]
