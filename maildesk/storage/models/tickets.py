"""The helpdesk itself: contacts, agents, tickets, their participants, messages, Message-IDs,
attachments and blobs, the audit log (events) and ratings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maildesk.storage.models.base import Base, BigId

__all__ = ["Agent", "Blob", "Contact", "Event", "MessageAttachment", "MessageRef", "Participant", "Rating", "Ticket", "TicketMessage"]


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class Agent(Base):
    """Synced from config/agents.toml; the file is the source of truth."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    login: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="agent")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    rr_counter: Mapped[int] = mapped_column(Integer, default=0)  # unused; migration 0001 made the column NOT NULL without a server default


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status", "status"),
        Index("ix_tickets_requester", "requester_id"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)  # the ticket number
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="new")
    priority: Mapped[str] = mapped_column(String(20), default="normal")
    requester_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    team: Mapped[str | None] = mapped_column(String(100))
    queue: Mapped[str | None] = mapped_column(String(100))
    support_address: Mapped[str | None] = mapped_column(String(320))  # the address the customer wrote to
    tags: Mapped[list] = mapped_column(JSON, default=list)
    spam: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_policy: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))  # follow-up of a closed ticket
    thread_topic: Mapped[str | None] = mapped_column(Text)
    thread_index: Mapped[str | None] = mapped_column(Text)
    # SLA: deadlines stored when the ticket opens or changes priority; state of warnings,
    # breaches and escalation steps already run; pending intervals that pause the clock.
    first_response_due: Mapped[datetime | None]
    next_response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    awaiting_since: Mapped[datetime | None]  # the customer's oldest unanswered message
    pending_since: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    sla_state: Mapped[dict] = mapped_column(JSON, default=dict)
    pauses: Mapped[list] = mapped_column(JSON, default=list)

    requester: Mapped[Contact] = relationship(lazy="joined")
    assignee: Mapped[Agent | None] = relationship(lazy="joined")


class Participant(Base):
    """Everyone a ticket's mail came from or went to; decides who may thread by subject."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("ticket_id", "address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    address: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(20))  # requester cc agent


class TicketMessage(Base):
    """One inbound or outbound mail, or an internal note, on a ticket."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out | int (internal)
    kind: Mapped[str] = mapped_column(String(30))  # customer agent_reply note system autoreply notification
    from_addr: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(200), default="")
    to: Mapped[list] = mapped_column(JSON, default=list)
    cc: Mapped[list] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(998))
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    thread_via: Mapped[str | None] = mapped_column(String(20))  # token header subject new
    created_at: Mapped[datetime]

    attachments: Mapped[list[MessageAttachment]] = relationship(lazy="selectin", order_by="MessageAttachment.id")
    # Never loaded by the code (it uses ticket_id); it tells the unit of work to insert a
    # new ticket before its messages when both are flushed together (maildesk.storage.batch).
    ticket: Mapped[Ticket] = relationship(lazy="raise_on_sql")


class MessageRef(Base):
    """Every Message-ID seen or sent -> ticket, for threading by In-Reply-To/References."""

    __tablename__ = "message_ids"

    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    direction: Mapped[str] = mapped_column(String(3))


class Blob(Base):
    """Attachment contents, stored once per sha256."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class MessageAttachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    filename: Mapped[str] = mapped_column(String(500), default="")
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer)


class Event(Base):
    """The audit log: every change with actor and reason."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))  # system, rule:<name>, agent:<login>, customer
    kind: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Rating(Base):
    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]
