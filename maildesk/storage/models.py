"""SQLAlchemy models: the whole schema in one place.

Times are stored as naive UTC and come back as aware UTC (:class:`UTCDateTime`).
Ticket numbers are the ticket's primary key, handed out by the database (SQLite
AUTOINCREMENT, a PostgreSQL identity/sequence), so two processes never share one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator

__all__ = [
    "Agent",
    "AssignState",
    "AutoReply",
    "Base",
    "Blob",
    "Contact",
    "Event",
    "HeldNotification",
    "ImapState",
    "InboxMail",
    "InboxRaw",
    "JobRun",
    "MessageAttachment",
    "MessageRef",
    "Notice",
    "Notified",
    "Outbox",
    "OutboxBody",
    "Participant",
    "Rating",
    "Revision",
    "Suppression",
    "Ticket",
    "TicketMessage",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


# BigInteger on PostgreSQL, INTEGER on SQLite (so that it is the rowid alias).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class InboxMail(Base):
    """Every accepted raw message, before and after processing (the durable hand-off)."""

    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_status_id", "status", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(100))  # smtp, lmtp, pipe, imap:<name>
    mail_from: Mapped[str] = mapped_column(Text, default="")
    rcpt_to: Mapped[list] = mapped_column(JSON, default=list)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending processed failed duplicate
    outcome: Mapped[str | None] = mapped_column(Text)  # what processing did, in words
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(String(998))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    processed_at: Mapped[datetime | None]
    queue: Mapped[str | None] = mapped_column(String(100))  # mailbox/queue it came through


class InboxRaw(Base):
    """The bytes of an accepted mail, apart from its inbox row: SQLite rewrites a whole row,
    overflow pages included, on every UPDATE, and the inbox row changes status once or more.
    ``raw`` is the last column, so SQLite inserts it zero-filled without building it in
    memory and the intake fills it in pieces (:mod:`maildesk.storage.rawblob`)."""

    __tablename__ = "inbox_raw"

    inbox_id: Mapped[int] = mapped_column(BigId, primary_key=True)  # inbox.id (no foreign key: see migration 0005)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


InboxMail.raw = column_property(
    select(InboxRaw.raw).where(InboxRaw.inbox_id == InboxMail.id).correlate_except(InboxRaw).scalar_subquery(),
    deferred=True,  # loaded when read: listing the inbox does not read every mail
)


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


class Outbox(Base):
    """A rendered outgoing mail waiting for (or done with) delivery."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(30))  # ack, reply, notification, ...
    created_at: Mapped[datetime]
    mail_from: Mapped[str] = mapped_column(String(320))  # envelope sender
    rcpt_to: Mapped[list] = mapped_column(JSON)
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued sending sent failed bounced
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # host:pid of the worker holding the lease
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]


class OutboxBody(Base):
    """The bytes of an outgoing mail, apart from its outbox row: SQLite rewrites a whole
    row on every update, and an outbox row changes status two or three times."""

    __tablename__ = "outbox_bodies"

    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


Outbox.raw = column_property(
    select(OutboxBody.raw).where(OutboxBody.message_id == Outbox.message_id).correlate_except(OutboxBody).scalar_subquery(),
    deferred=True,  # loaded when read: listing the outbox does not read every mail
)


class AutoReply(Base):
    """One automatic mail sent to an address: the per-sender rate limit counts these."""

    __tablename__ = "autoreplies"
    __table_args__ = (Index("ix_autoreplies_addr_at", "address", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime]


class Suppression(Base):
    """No automatic mail to this address until ``until`` (after a permanent failure)."""

    __tablename__ = "suppressions"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    until: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")


class ImapState(Base):
    """Per mailbox and folder: UIDVALIDITY and the last UID whose message is committed."""

    __tablename__ = "imap_state"

    mailbox: Mapped[str] = mapped_column(String(200), primary_key=True)
    folder: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class AssignState(Base):
    """Round-robin position per team: the login assigned last."""

    __tablename__ = "assign_state"

    team: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_login: Mapped[str] = mapped_column(String(100))


class JobRun(Base):
    """When each scheduled job last ran and what it did (for `maildesk jobs list`)."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_run_at: Mapped[datetime]
    next_run_at: Mapped[datetime | None]
    result: Mapped[str] = mapped_column(Text, default="")


class Notice(Base):
    """A notification decided but not rendered yet: processing records who is to hear of
    what, the delivery worker renders and queues the mail (maildesk.outgoing.notices), so a mail
    storm's acknowledgements do not wait for agent notifications. ``done_at`` is set in
    the transaction that queues the mail."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_pending", "done_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))  # the message it is about
    event: Mapped[str] = mapped_column(String(50))
    template: Mapped[str] = mapped_column(String(100))
    agents: Mapped[list] = mapped_column(JSON, default=list)  # logins
    addresses: Mapped[list] = mapped_column(JSON, default=list)  # plain addresses (no agent token)
    actor: Mapped[str] = mapped_column(String(320), default="")
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class Notified(Base):
    """One inbound mail whose agent notifications went out: ``[workflow] notify_limit``
    counts these per sender and per ticket within ``notify_window`` (maildesk.outgoing.fanout)."""

    __tablename__ = "notified"
    __table_args__ = (Index("ix_notified_sender_at", "sender", "at"), Index("ix_notified_ticket_at", "ticket_id", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    sender: Mapped[str] = mapped_column(String(320))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))


class HeldNotification(Base):
    """A notification not mailed because a fan-out limit was reached: one row per recipient
    (an agent's login, or a plain address), listed in that recipient's next digest."""

    __tablename__ = "held_notifications"
    __table_args__ = (Index("ix_held_notifications_digest", "digest_at", "recipient"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    recipient: Mapped[str] = mapped_column(String(320))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    sender: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200), default="")
    event: Mapped[str] = mapped_column(String(50))
    why: Mapped[str] = mapped_column(String(20))  # sender | ticket: which limit held it
    digest_at: Mapped[datetime | None]  # when the digest listing it was queued


class Revision(Base):
    """Counters that tell a process whether the data it read has changed since.

    ``state`` goes up with every write transaction except the intake's and the outbox
    worker's routine ones (SQLite only): processing reads and decides without the write
    lock, then writes only if ``state`` is still what it read (maildesk.process.pipeline)."""

    __tablename__ = "revisions"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Rating(Base):
    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]
