"""Mail in and out as bytes and rows: the inbox (accepted raw mail) and the outbox (mail to deliver)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column

from maildesk.storage.models.base import Base, BigId

__all__ = ["InboxMail", "InboxRaw", "Outbox", "OutboxBody"]


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
