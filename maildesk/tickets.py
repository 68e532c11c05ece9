"""Ticket state as plain functions over a session: contacts, tickets, messages, events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from maildesk.message import InboundMessage
from maildesk.models import Blob, Contact, Event, MessageAttachment, MessageRef, Participant, Ticket, TicketMessage
from maildesk.slaclock import pause_for_status

__all__ = [
    "PRIORITIES",
    "STATUSES",
    "add_message",
    "add_participants",
    "contact_for",
    "insert_ignore",
    "open_ticket",
    "participants",
    "record",
    "resolve_merged",
    "set_status",
    "store_attachments",
]

STATUSES = ("new", "open", "pending", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")


def insert_ignore(session: Session, model, **values) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike."""
    dialect = session.get_bind().dialect.name
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(model).values(**values)
    session.execute(ins.on_conflict_do_nothing())


def record(session: Session, ticket: Ticket | int | None, actor: str, kind: str, now: datetime, /, **detail) -> Event:
    ticket_id = ticket.id if isinstance(ticket, Ticket) else ticket
    ev = Event(ticket_id=ticket_id, at=now, actor=actor, kind=kind, detail=detail)
    session.add(ev)
    return ev


def contact_for(session: Session, address: str, name: str, now: datetime) -> Contact:
    address = address.lower()
    insert_ignore(session, Contact, address=address, name=name or "", created_at=now)
    contact = session.scalars(select(Contact).where(Contact.address == address)).one()
    if name and not contact.name:
        contact.name = name
    return contact


def open_ticket(session: Session, msg: InboundMessage, requester: Contact, now: datetime,
                parent_id: int | None = None) -> Ticket:
    ticket = Ticket(subject=msg.subject, status="new", priority="normal", requester=requester, tags=[],
                    created_at=now, updated_at=now, queue=msg.queue, parent_id=parent_id,
                    thread_topic=msg.header("thread-topic") or None, thread_index=msg.header("thread-index") or None)
    session.add(ticket)
    session.flush()
    return ticket


def add_message(session: Session, ticket: Ticket, msg: InboundMessage, *, inbox_id: int | None, kind: str,
                via: str, now: datetime, direction: str = "in", text: str | None = None,
                max_attachment_size: int | None = None) -> TicketMessage:
    row = TicketMessage(ticket_id=ticket.id, inbox_id=inbox_id, direction=direction, kind=kind,
                        from_addr=msg.from_addr, from_name=msg.from_name, to=[a for _, a in msg.to],
                        cc=[a for _, a in msg.cc], subject=msg.subject, message_id=msg.message_id,
                        text=msg.text if text is None else text, html=msg.html, thread_via=via, created_at=now)
    session.add(row)
    limit = max_attachment_size or 0
    kept = [a for a in msg.attachments if not limit or a.size <= limit]
    for att in msg.attachments:
        if limit and att.size > limit:
            record(session, ticket, "system", "attachment_refused", now, filename=att.filename, size=att.size, limit=limit,
                   inbox=inbox_id, hint=f"larger than [mail] max_attachment_size; the whole raw message stays in inbox {inbox_id}")
    store_attachments(session, row, kept)
    if msg.message_id:
        insert_ignore(session, MessageRef, message_id=msg.message_id, ticket_id=ticket.id, direction=direction)
    ticket.updated_at = now
    return row


def store_attachments(session: Session, row: TicketMessage, attachments) -> None:
    """Attachments are content-addressed: each distinct content is stored once."""
    if attachments and row.id is None:
        session.flush()  # the attachment rows need the message's id
    for att in attachments:
        digest = att.sha256
        if session.get(Blob, digest) is None:
            insert_ignore(session, Blob, sha256=digest, size=att.size, data=att.data)
        session.add(MessageAttachment(message_id=row.id, sha256=digest, filename=att.filename,
                                      content_type=att.content_type, size=att.size))


def add_participants(session: Session, ticket: Ticket, addresses, role: str, is_ours=lambda address: False) -> None:
    """Remember who a ticket's mail came from or went to (never our own support addresses)."""
    for address in dict.fromkeys(a.lower() for a in addresses if a):
        if not is_ours(address):
            insert_ignore(session, Participant, ticket_id=ticket.id, address=address, role=role)


def participants(session: Session, ticket_id: int) -> dict[str, str]:
    rows = session.execute(select(Participant.address, Participant.role).where(Participant.ticket_id == ticket_id))
    return dict(rows.all())


def set_status(session: Session, ticket: Ticket, status: str, actor: str, now: datetime, reason: str = "") -> bool:
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
        if old in ("resolved", "closed"):
            ticket.resolved_at = None
    record(session, ticket, actor, "status", now, old=old, new=status, reason=reason)
    return True


def resolve_merged(session: Session, ticket: Ticket | None) -> Ticket | None:
    """Follow ``merged_into`` links to the ticket that is alive."""
    seen = set()
    while ticket is not None and ticket.merged_into_id and ticket.id not in seen:
        seen.add(ticket.id)
        ticket = session.get(Ticket, ticket.merged_into_id)
    return ticket
