"""Loop guards: may maildesk send an automatic reply to this message? (design section 4)

Bounces and autoresponders are recognised in :mod:`maildesk.parse.autodetect`; this module
adds list mail, our own loop header and addresses, system senders and the rate limit.

:func:`suppression_reason` is pure and answers from the message alone; the rate limit
and the bounce suppression list need the database and live in :func:`may_autoreply`.
Outgoing automatic mail carries :data:`AUTO_HEADERS` (RFC 3834) and our loop header.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from maildesk.parse.addresses import base_address
from maildesk.parse.autodetect import classify
from maildesk.parse.message import InboundMessage
from maildesk.storage.models import AutoReply, Suppression
from maildesk.storage.writer import Writer

__all__ = ["AUTO_HEADERS", "LOOP_HEADER", "may_autoreply", "record_autoreply", "suppress", "suppression_reason"]

LOOP_HEADER = "X-Maildesk-Loop"
AUTO_HEADERS = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All", "Precedence": "auto_reply"}

_SUPPRESSED = select(Suppression.until, Suppression.reason).where(Suppression.address == bindparam("address"))
_SENT_SINCE = (select(func.count()).select_from(AutoReply)
               .where(AutoReply.address == bindparam("address"), AutoReply.at > bindparam("since")))
_SYSTEM_LOCALS = ("mailer-daemon", "postmaster", "no-reply", "noreply", "do-not-reply", "donotreply",
                  "bounce", "bounces", "mail-daemon", "listserv", "majordomo")


def suppression_reason(msg: InboundMessage, own_addresses: tuple[str, ...], loop_id: str) -> str | None:
    """Why this message must never get an automatic reply, or None if it may.

    Bounces and autoresponders, with or without standard markers, are recognised by
    :func:`maildesk.parse.autodetect.classify`; the rest are list mail, loops and system senders."""
    verdict = classify(msg)
    if verdict is not None:
        return f"{verdict.kind}: {verdict.reason}"
    precedence = msg.header("precedence").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    for header in ("list-id", "list-unsubscribe", "list-post"):
        if msg.header(header):
            return f"mailing list mail ({header.title()})"
    if msg.headers.get(LOOP_HEADER.lower()):
        return f"carries our loop header {LOOP_HEADER}"
    if msg.header("content-type").lower().startswith("multipart/report"):
        return "delivery status notification"
    if msg.null_return_path == "envelope":
        return "null return path (<>)"
    if msg.null_return_path == "header":  # IMAP and pipe: the delivering MTA wrote it down
        return "null return path (Return-Path: <>)"
    sender = (msg.from_addr or msg.mail_from).lower()
    if not sender:
        return "no sender address"
    local = sender.split("@", 1)[0]
    if local in _SYSTEM_LOCALS or local.startswith(("mailer-daemon", "no-reply", "noreply")):
        return f"system sender {local}@"
    own = {a.lower() for a in own_addresses}
    if sender in own or base_address(sender) in own:
        return "mail from our own address"
    return None


def may_autoreply(w: Writer, address: str, now: datetime, limit: int, window_s: int) -> str | None:
    """None if an automatic mail to ``address`` is allowed now, else the reason it is not."""
    address = address.lower()
    since = now - timedelta(seconds=window_s)
    hit, blocked = w.known("suppressed", address)
    if not hit:
        blocked = w.session.execute(_SUPPRESSED, {"address": address}).first()
    if blocked is not None and blocked[0] > now:
        return f"address suppressed until {blocked[0]:%Y-%m-%d} ({blocked[1]})"
    hit, times = w.known("autoreplies", address)
    if hit:
        sent = sum(1 for at in times or () if at > since)
    else:
        sent = w.session.execute(_SENT_SINCE, {"address": address, "since": since}).scalar()
    if sent >= limit:
        return f"rate limit: {sent} automatic replies to this address in the last {window_s // 60} minutes"
    return None


def record_autoreply(w: Writer, address: str, now: datetime) -> None:
    w.insert(AutoReply.__table__, {"address": address.lower(), "at": now})


def suppress(session: Session, address: str, until: datetime, reason: str) -> None:
    session.flush()  # an earlier suppress() of the same address in this transaction must be visible
    row = session.get(Suppression, address.lower())
    if row is None:
        session.add(Suppression(address=address.lower(), until=until, reason=reason[:500]))
    else:
        row.until, row.reason = max(row.until, until), reason[:500]
