"""Ticket state as plain functions over a writer: contacts, tickets, messages, events.

Every function that changes something takes the :class:`~maildesk.storage.writer.Writer`
it writes through (immediate, or a processing batch) and reads through ``w.session``.

The statements run for every processed message are built once (module constants and
:func:`maildesk.storage.writer.write_ignore`'s cache) and executed with parameters: building a SQLAlchemy
statement costs several times more than running it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from maildesk.daemon.logsetup import redact_text
from maildesk.parse.message import InboundMessage
from maildesk.sla.clock import pause_for_status
from maildesk.storage.models import Blob, Contact, Event, MessageAttachment, MessageRef, Participant, Ticket, TicketMessage
from maildesk.storage.writer import Writer
from maildesk.vocab import DONE_STATES, STATUSES

__all__ = [
    "add_message",
    "add_participants",
    "contact_for",
    "find_contact",
    "insert_ignore",
    "open_ticket",
    "participants",
    "record",
    "resolve_merged",
    "set_status",
    "store_attachments",
]

log = logging.getLogger("maildesk.security")

_CONTACT = select(Contact).where(Contact.address == bindparam("address"))


def insert_ignore(w: Writer, model, rows: list[dict] | None = None, /, **values) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike: one row given as
    keywords, or several as ``rows`` (one executemany). ``model``: a mapped class or a Table.
    A processing batch writes the rows when it is flushed."""
    w.insert_ignore(getattr(model, "__table__", model), [values] if rows is None else rows)


def record(w: Writer, ticket: Ticket | int | None, actor: str, kind: str, now: datetime, /, **detail) -> None:
    """One event in the ticket's audit log; a ``security`` event is also a WARNING in the log."""
    ticket_id = ticket.id if isinstance(ticket, Ticket) else ticket
    if kind == "security":
        _warn_security(ticket_id, detail)
    w.insert(Event.__table__, {"ticket_id": ticket_id, "at": now, "actor": actor, "kind": kind, "detail": detail})


def _warn_security(ticket_id: int | None, detail: dict) -> None:
    """One line per security event, addresses redacted as every INFO line is (see :mod:`maildesk.daemon.logsetup`)."""
    extra = ", ".join(f"{k}={redact_text(str(v))}" for k, v in detail.items() if k != "reason" and v not in (None, "", [], {}))
    log.warning("security event on ticket %s: %s%s", ticket_id if ticket_id is not None else "-",
                redact_text(str(detail.get("reason", "(no reason given)"))), f" ({extra})" if extra else "")


def find_contact(w: Writer, address: str) -> Contact | None:
    hit, contact = w.known("contact", address.lower())
    return contact if hit else w.session.scalars(_CONTACT, {"address": address.lower()}).first()


def contact_for(w: Writer, address: str, name: str, now: datetime) -> tuple[Contact, bool]:
    """The contact for ``address`` (created when new, its name filled in when it had none),
    and whether it existed before."""
    address = address.lower()
    contact = find_contact(w, address)
    known = contact is not None
    if contact is None:
        contact = w.new_contact(address, name, now)
    if name and not contact.name:
        contact.name = name
    return contact, known


def open_ticket(w: Writer, msg: InboundMessage, requester: Contact, now: datetime,
                parent_id: int | None = None, **fields) -> Ticket:
    ticket = Ticket(subject=msg.subject, status="new", priority="normal", requester=requester, tags=[], spam=False,
                    sla_state={}, pauses=[], created_at=now, updated_at=now, queue=msg.queue, parent_id=parent_id,
                    thread_topic=msg.header("thread-topic") or None, thread_index=msg.header("thread-index") or None,
                    **fields)
    w.new_ticket(ticket)
    return ticket


def add_message(w: Writer, ticket: Ticket, msg: InboundMessage, *, inbox_id: int | None, kind: str,
                via: str, now: datetime, direction: str = "in", text: str | None = None,
                max_attachment_size: int | None = None) -> TicketMessage:
    row = TicketMessage(ticket_id=ticket.id, inbox_id=inbox_id, direction=direction, kind=kind,
                        from_addr=msg.sender if direction == "in" else msg.from_addr, from_name=msg.from_name, to=[a for _, a in msg.to],
                        cc=[a for _, a in msg.cc], subject=msg.subject, message_id=msg.message_id,
                        text=msg.text if text is None else text, html=msg.html, thread_via=via, created_at=now)
    w.session.add(row)
    limit = max_attachment_size or 0
    kept = [a for a in msg.attachments if not limit or a.size <= limit]
    for att in msg.attachments:
        if limit and att.size > limit:
            record(w, ticket, "system", "attachment_refused", now, filename=att.filename, size=att.size, limit=limit,
                   inbox=inbox_id, hint=f"larger than [mail] max_attachment_size; the whole raw message stays in inbox {inbox_id}")
    store_attachments(w, row, kept)
    if msg.message_id:
        insert_ignore(w, MessageRef, message_id=msg.message_id, ticket_id=ticket.id, direction=direction)
    ticket.updated_at = now
    return row


def store_attachments(w: Writer, row: TicketMessage, attachments) -> None:
    """Attachments are content-addressed: each distinct content is stored once."""
    if row.id is None:
        row.attachments = []  # a new message: its list is known, reading it never costs a query
    for att in attachments:
        digest = att.sha256
        insert_ignore(w, Blob, sha256=digest, size=att.size, data=att.data)
        w.keep_blob(digest, att.data)
        row.attachments.append(MessageAttachment(sha256=digest, filename=att.filename, content_type=att.content_type,
                                                 size=att.size))


def add_participants(w: Writer, ticket: Ticket, addresses, role: str, is_ours=lambda address: False) -> None:
    """Remember who a ticket's mail came from or went to (never our own support addresses)."""
    rows = [{"ticket_id": ticket.id, "address": address, "role": role}
            for address in dict.fromkeys(a.lower() for a in addresses if a) if not is_ours(address)]
    insert_ignore(w, Participant, rows)


def participants(session: Session, ticket_id: int) -> dict[str, str]:
    rows = session.execute(select(Participant.address, Participant.role).where(Participant.ticket_id == ticket_id))
    return dict(rows.all())


def set_status(w: Writer, ticket: Ticket, status: str, actor: str, now: datetime, reason: str = "") -> bool:
    """Change the status with an event; False (and nothing recorded) when it is unchanged."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    old = ticket.status
    if old == status:
        return False
    pause_for_status(ticket, old, status, now)
    ticket.status, ticket.updated_at = status, now
    if status == "resolved":
        ticket.resolved_at = now
    elif status == "closed":
        ticket.closed_at = now
    elif status in ("open", "new", "pending"):
        ticket.closed_at = None if old == "closed" else ticket.closed_at
        if old in DONE_STATES:
            ticket.resolved_at = None
    record(w, ticket, actor, "status", now, old=old, new=status, reason=reason)
    return True


def resolve_merged(session: Session, ticket: Ticket | None) -> Ticket | None:
    """Follow ``merged_into`` links to the ticket that is alive."""
    seen = set()
    while ticket is not None and ticket.merged_into_id and ticket.id not in seen:
        seen.add(ticket.id)
        ticket = session.get(Ticket, ticket.merged_into_id)
    return ticket
