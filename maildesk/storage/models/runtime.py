"""Bookkeeping of the running desk: automatic-reply counts, suppressions, IMAP state,
round-robin state, job runs, agents' notifications (notices, notified, held), revisions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from maildesk.storage.models.base import Base, BigId

__all__ = ["AssignState", "AutoReply", "HeldNotification", "ImapState", "JobRun", "Notice", "Notified", "Revision", "Suppression"]


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
    the transaction that queues the mail. One that cannot be rendered stays ``pending``
    and is tried again at ``next_attempt_at`` (backoff), then is kept as ``failed``
    after ``[outbound] notice_max_attempts`` (``maildesk notices retry``)."""

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
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending failed (done: done_at is set)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed attempts so far
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)


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
