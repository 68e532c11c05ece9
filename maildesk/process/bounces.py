"""Bounces prove themselves (design section 4).

Every outgoing mail has its own envelope sender, ``support+b<key>-<mac>@domain``, where
``key`` is the random part of that mail's Message-ID (:func:`maildesk.outgoing.tokens.bounce_address`).
A delivery report (RFC 3464) or a plain bounce changes something (marks the outbox row
bounced, notes the ticket, suppresses the address) only when it came to such an address
with a valid MAC AND names a recipient that row was sent to. Anything else, and any other
null-sender mail, is kept in the inbox as unverified and changes nothing: it opens no
ticket and notifies nobody, so a forged report can neither silence a customer nor write
into their ticket.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from maildesk.desk import Desk
from maildesk.outgoing.tokens import is_bounce_token, verify_bounce
from maildesk.parse.autodetect import is_bounce
from maildesk.parse.message import InboundMessage
from maildesk.parse.subjects import format_ref
from maildesk.process.autoreply import suppress
from maildesk.process.correlate import recipient_tokens
from maildesk.process.outcome import Outcome
from maildesk.storage.models import Outbox, Ticket
from maildesk.storage.writer import Writer
from maildesk.tickets.state import add_message, record

__all__ = ["handle_bounce", "is_bounce_candidate", "is_null_sender"]

_DELAY = re.compile(r"\b(delayed|deferred|will (be )?retr(y|ied)|still trying|not yet been delivered|warning:)", re.I)


def is_null_sender(msg: InboundMessage) -> bool:
    """MAIL FROM:<> over SMTP/LMTP; for IMAP and the pipe, ``Return-Path: <>`` written by the delivering MTA."""
    if msg.source in ("smtp", "lmtp"):  # a Return-Path header there is the sender's own writing
        return msg.null_return_path == "envelope"
    return msg.null_return_path == "header"


def is_bounce_candidate(msg: InboundMessage, support: tuple[str, ...]) -> bool:
    """Handled here, never as a customer's mail: a delivery report, null-sender mail, mail from
    a mailer daemon, and a bounce recognised by its content (:func:`maildesk.parse.autodetect.is_bounce`)
    that came to one of our bounce addresses. Content alone never takes an ordinary sender's
    mail off the ticket path (it only costs them the acknowledgement), so a misjudged
    customer mail still opens its ticket."""
    local = (msg.from_addr or "").split("@", 1)[0]
    if msg.delivery_report is not None or is_null_sender(msg) or local.startswith(("mailer-daemon", "mail-daemon")):
        return True
    return bool(_bounce_tokens(msg, support)) and is_bounce(msg)


def _bounce_tokens(msg: InboundMessage, support: tuple[str, ...]) -> list[str]:
    return [t for t in recipient_tokens(msg, support) if is_bounce_token(t)]


def _sent_mail(session: Session, desk: Desk, msg: InboundMessage) -> tuple[Outbox | None, str]:
    """The outbox row a valid bounce address among the recipients names, or why there is none."""
    tokens = _bounce_tokens(msg, desk.config.mail.addresses)
    if not tokens:
        return None, "not sent to one of our bounce addresses"
    domains = {a.rpartition("@")[2] for a in desk.config.mail.addresses}
    for token in tokens:
        key = verify_bounce(desk.secret, token)
        if key is None:
            continue
        ids = [f"<{key}@{d}>" for d in domains | {d.lower() for d in domains}]
        row = session.scalars(select(Outbox).where(Outbox.message_id.in_(ids))).first()
        if row is not None:
            return row, ""
        return None, "its bounce address names no mail we sent"
    return None, "its bounce address does not verify (forged or altered)"


def _named(msg: InboundMessage, row: Outbox) -> list[str]:
    """The recipients of ``row`` that the report names (Final-Recipient, X-Failed-Recipients, or the text)."""
    sent_to = [a.lower() for a in row.rcpt_to]
    report = msg.delivery_report
    if report is not None and report.recipients:
        named = {r.lower() for r in report.recipients}
        return [a for a in sent_to if a in named]
    if msg.bounce_failures:  # what flufl.bounce found in a non-standard bounce
        named = {r.lower() for r in msg.bounce_failures}
        return [a for a in sent_to if a in named]
    text = f"{msg.text}\n{' '.join(msg.headers.get('x-failed-recipients', ()))}".lower()
    return [a for a in sent_to if a in text]


def handle_bounce(w: Writer, desk: Desk, msg: InboundMessage, now: datetime) -> Outcome:
    session = w.session
    report = msg.delivery_report
    what = f"delivery report ({report.action or 'unknown'} {report.status})" if report is not None else "null-sender mail"
    row, why = _sent_mail(session, desk, msg)
    named = _named(msg, row) if row is not None else []
    if row is None or not named:
        why = why or "it names none of the recipients that mail was sent to"
        return Outcome("processed", f"unverified {what}: {why}; kept in the inbox, changes nothing, no ticket opened")
    if report is not None:
        permanent, status, action, diagnostic = report.permanent, report.status, report.action, report.diagnostic
    else:  # a plain bounce: permanent unless it reads like a delay warning
        permanent = not _DELAY.search(msg.subject + "\n" + msg.text[:4000])
        status, action, diagnostic = ("5.0.0", "failed", msg.text[:500]) if permanent else ("4.0.0", "delayed", msg.text[:500])
    if permanent:
        session.execute(update(Outbox).where(Outbox.id == row.id).values(status="bounced", last_error=diagnostic[:1000]))
        until = now + timedelta(days=desk.config.mail.suppress_days)
        for rcpt in named:
            suppress(session, rcpt, until, f"bounce {status}: {diagnostic[:200]}")
    marked = f"outbox {row.id} marked {'bounced' if permanent else 'unchanged'}"
    ticket = session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
    if ticket is None:
        return Outcome("processed", f"verified {what} for outgoing mail {row.id}; {marked}")
    text = (f"Delivery status notification for our {row.kind} mail {row.message_id}: {action} {status} to "
            f"{', '.join(named)}\n{diagnostic}").strip()
    add_message(w, ticket, msg, inbox_id=None, kind="system", via="bounce", now=now, direction="int", text=text)
    record(w, ticket, "system", "bounce", now, outbox=row.id, status=status, action=action, recipients=named,
           diagnostic=diagnostic[:500])
    ref = format_ref(desk.config.mail.ticket_prefix, ticket.id)
    return Outcome("processed", f"verified {what} {status} attached to {ref}; {marked}", ticket.id)
