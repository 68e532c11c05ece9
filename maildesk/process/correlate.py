"""Which ticket does a message belong to? (design section 3; first hit wins)

1. a valid signed ``+token`` reply address among the recipients;
2. ``In-Reply-To`` / ``References`` matching any stored Message-ID (inbound or outbound);
3. a ``[MD-1042]`` subject reference, only when the sender is a participant of that ticket;
4. otherwise none: a new ticket.

A token that does not verify is never trusted: it is reported in ``security`` and the
lookup carries on with the next steps.

Finding the ticket is not trusting the sender. :attr:`ThreadMatch.verified` says whether the
mail proves its place on the ticket: it came to a valid signed reply address, or it
references one of our own Message-IDs (128 random bits) that we sent to its From address.
A header reference to anyone else's mail and a subject reference prove nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from maildesk.outgoing.tokens import ReplyToken, find_token, is_bounce_token, verify_token
from maildesk.parse.message import InboundMessage
from maildesk.parse.subjects import find_refs
from maildesk.storage.models import MessageRef, Outbox, Participant, Ticket
from maildesk.storage.writer import Writer
from maildesk.tickets.state import resolve_merged

__all__ = ["ThreadMatch", "find_ticket", "first_valid_token", "is_participant", "recipient_tokens", "reply_tokens", "token_addresses",
           "verify_tokens"]


@dataclass
class ThreadMatch:
    ticket: Ticket | None
    via: str  # token | header | subject | new
    token: ReplyToken | None = None
    security: list[str] = field(default_factory=list)
    verified: bool = False  # a token, or our Message-ID sent to this sender: see the module docstring


_DELIVERY_HEADERS_KEPT = 20  # values of the delivery headers looked at; any mail can carry thousands


def token_addresses(msg: InboundMessage) -> tuple[str, ...]:
    """Recipient addresses (the envelope's, bounded by ``[smtp] max_recipients``; To and Cc, by
    ``[mail] max_addresses_per_mail``), plus the first delivery headers IMAP mailboxes keep (no envelope there)."""
    extra = []
    for header in ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to"):
        for value in msg.headers.get(header, ())[:_DELIVERY_HEADERS_KEPT - len(extra)]:
            extra.append(value.strip().strip("<>").lower())
    return (*msg.recipients, *extra)


def recipient_tokens(msg: InboundMessage, support: tuple[str, ...]) -> list[str]:
    """The ``+token`` parts of the recipients' support sub-addresses, once each (reply, survey and bounce tokens)."""
    return list(dict.fromkeys(find_token(token_addresses(msg), support)))


def reply_tokens(msg: InboundMessage, support: tuple[str, ...]) -> list[str]:
    """:func:`recipient_tokens` without the bounce addresses, which are not reply tokens."""
    return [t for t in recipient_tokens(msg, support) if not is_bounce_token(t)]


def verify_tokens(msg: InboundMessage, *, secret: str, support: tuple[str, ...]) -> tuple[tuple[str, ReplyToken | None], ...]:
    """Each reply token among the recipients with what it says, or None when it does not verify.
    Inbound mail is verified once (the ``token`` stage); the result serves both
    :func:`~maildesk.process.authz.identify` (:func:`first_valid_token`) and :func:`find_ticket`."""
    return tuple((raw_token, verify_token(secret, raw_token)) for raw_token in reply_tokens(msg, support))


def first_valid_token(tokens: tuple[tuple[str, ReplyToken | None], ...]) -> ReplyToken | None:
    """The first of :func:`verify_tokens`'s tokens that verified."""
    return next((tok for _, tok in tokens if tok is not None), None)


_SENT_TO = select(Outbox.rcpt_to).where(Outbox.message_id.in_(bindparam("ids", expanding=True)))
_PARTICIPANT = select(Participant.id).where(Participant.ticket_id == bindparam("ticket"), Participant.address == bindparam("address"))


def _proves(session: Session, msg: InboundMessage) -> bool:
    """Does the mail reference one of our Message-IDs that we sent to its From address?"""
    sender = (msg.from_addr or "").lower()
    if not sender or not msg.thread_ids:
        return False
    return any(sender in {a.lower() for a in rcpt} for rcpt in session.scalars(_SENT_TO, {"ids": list(msg.thread_ids)}))


def is_participant(session: Session, ticket_id: int, address: str) -> bool:
    return bool(address) and session.execute(_PARTICIPANT, {"ticket": ticket_id, "address": address.lower()}).first() is not None


_REFS = select(MessageRef.message_id, MessageRef.ticket_id).where(MessageRef.message_id.in_(bindparam("ids", expanding=True)))


def _tickets_of(w: Writer, ids) -> dict[str, int]:
    """Message-ID -> ticket for those of ``ids`` that are stored (read ahead by the writer, if it did)."""
    found = [w.known("ref", mid) for mid in ids]
    if all(hit for hit, _ in found):
        return {mid: row[0] for mid, (_, row) in zip(ids, found, strict=True) if row is not None}
    return dict(w.session.execute(_REFS, {"ids": list(ids)}).all())


def find_ticket(w: Writer, msg: InboundMessage, *, tokens: tuple[tuple[str, ReplyToken | None], ...], prefix: str,
                sender_is_agent: bool = False) -> ThreadMatch:
    """``tokens``: the recipients' reply tokens as :func:`verify_tokens` verified them.
    ``sender_is_agent``: an authenticated agent takes part in every ticket, so a subject
    reference from them is accepted without the participant check."""
    session = w.session
    security: list[str] = []
    for raw_token, tok in tokens:
        if tok is None:
            security.append(f"reply token {raw_token[:60]!r} does not verify (forged or altered); ignored")
            continue
        ticket = resolve_merged(session, session.get(Ticket, tok.ticket))
        if ticket is not None:
            return ThreadMatch(ticket, "token", tok, security, verified=True)
        security.append(f"reply token names ticket {tok.ticket}, which does not exist")

    ids = msg.thread_ids
    if ids:
        refs = _tickets_of(w, ids)
        for mid in ids:
            if mid in refs:
                ticket = resolve_merged(session, session.get(Ticket, refs[mid]))
                if ticket is not None:
                    return ThreadMatch(ticket, "header", None, security, verified=_proves(session, msg))

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
