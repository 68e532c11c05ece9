"""Which ticket does a message belong to? (design section 3; first hit wins)

1. a valid signed ``+token`` reply address among the recipients;
2. ``In-Reply-To`` / ``References`` matching any stored Message-ID (inbound or outbound);
3. a ``[MD-1042]`` subject reference, only when the sender is a participant of that ticket;
4. otherwise none: a new ticket.

A token that does not verify is never trusted: it is reported in ``security`` and the
lookup carries on with the next steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from maildesk.batch import known
from maildesk.message import InboundMessage
from maildesk.models import MessageRef, Participant, Ticket
from maildesk.subjects import find_refs
from maildesk.tickets import resolve_merged
from maildesk.tokens import ReplyToken, find_token, verify_token

__all__ = ["ThreadMatch", "find_ticket", "first_valid_token", "token_addresses"]


@dataclass
class ThreadMatch:
    ticket: Ticket | None
    via: str  # token | header | subject | new
    token: ReplyToken | None = None
    security: list[str] = field(default_factory=list)


def token_addresses(msg: InboundMessage) -> tuple[str, ...]:
    """Recipient addresses, plus the delivery headers IMAP mailboxes keep (no envelope there)."""
    extra = []
    for header in ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to"):
        for value in msg.headers.get(header, ()):
            extra.append(value.strip().strip("<>").lower())
    return (*msg.recipients, *extra)


def first_valid_token(msg: InboundMessage, *, secret: str, support: tuple[str, ...]) -> ReplyToken | None:
    for raw_token in dict.fromkeys(find_token(token_addresses(msg), support)):
        tok = verify_token(secret, raw_token)
        if tok is not None:
            return tok
    return None


_REFS = select(MessageRef.message_id, MessageRef.ticket_id).where(MessageRef.message_id.in_(bindparam("ids", expanding=True)))


def _tickets_of(session: Session, ids) -> dict[str, int]:
    """Message-ID -> ticket for those of ``ids`` that are stored (read ahead by the batch, if any)."""
    found = [known(session, "ref", mid) for mid in ids]
    if all(hit for hit, _ in found):
        return {mid: row[0] for mid, (_, row) in zip(ids, found, strict=True) if row is not None}
    return dict(session.execute(_REFS, {"ids": list(ids)}).all())


def find_ticket(session: Session, msg: InboundMessage, *, secret: str, support: tuple[str, ...], prefix: str,
                sender_is_agent: bool = False) -> ThreadMatch:
    """``sender_is_agent``: an authenticated agent takes part in every ticket, so a subject
    reference from them is accepted without the participant check."""
    security: list[str] = []
    for raw_token in dict.fromkeys(find_token(token_addresses(msg), support)):
        tok = verify_token(secret, raw_token)
        if tok is None:
            security.append(f"reply token {raw_token[:60]!r} does not verify (forged or altered); ignored")
            continue
        ticket = resolve_merged(session, session.get(Ticket, tok.ticket))
        if ticket is not None:
            return ThreadMatch(ticket, "token", tok, security)
        security.append(f"reply token names ticket {tok.ticket}, which does not exist")

    ids = msg.thread_ids
    if ids:
        refs = _tickets_of(session, ids)
        for mid in ids:
            if mid in refs:
                ticket = resolve_merged(session, session.get(Ticket, refs[mid]))
                if ticket is not None:
                    return ThreadMatch(ticket, "header", None, security)

    sender = msg.from_addr.lower()
    numbers = find_refs(msg.subject, prefix)
    if numbers and sender:
        allowed = set(numbers) if sender_is_agent else set(session.scalars(
            select(Participant.ticket_id).where(Participant.ticket_id.in_(numbers), Participant.address == sender)))
        for number in numbers:
            if number in allowed:
                ticket = resolve_merged(session, session.get(Ticket, number))
                if ticket is not None:
                    return ThreadMatch(ticket, "subject", None, security)
        security.append(f"subject names ticket(s) {', '.join(map(str, numbers))} but the sender is not a participant")
    return ThreadMatch(None, "new", None, security)
