"""SQLAlchemy models: the whole schema, one module per group of tables, every model importable from here.

::

    base.py     the declarative base: naming convention, UTC times (UTCDateTime), BigId
    mail.py     inbox and outbox: accepted raw mail, mail to deliver, their bytes
    tickets.py  contacts, agents, tickets, participants, messages, Message-IDs, attachments, events, ratings
    runtime.py  automatic-reply counts, suppressions, IMAP and assignment state, job runs, notices, revisions
    web.py      the web view: one-time sign-in links, sign-in requests, per-customer keys of status links

Times are stored as naive UTC and come back as aware UTC (:class:`UTCDateTime`).
Ticket numbers are the ticket's primary key, handed out by the database (SQLite
AUTOINCREMENT, a PostgreSQL identity/sequence), so two processes never share one.
"""

from __future__ import annotations

from maildesk.storage.models.base import Base, BigId, UTCDateTime
from maildesk.storage.models.mail import InboxMail, InboxRaw, Outbox, OutboxBody
from maildesk.storage.models.runtime import AssignState, AutoReply, HeldNotification, ImapState, JobRun, Notice, Notified, Revision, Suppression
from maildesk.storage.models.tickets import Agent, Blob, Contact, Event, MessageAttachment, MessageRef, Participant, Rating, Ticket, TicketMessage
from maildesk.storage.models.web import CustomerKey, SigninRequest, WebToken

__all__ = [
    "Agent",
    "AssignState",
    "AutoReply",
    "Base",
    "BigId",
    "Blob",
    "Contact",
    "CustomerKey",
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
    "SigninRequest",
    "Suppression",
    "Ticket",
    "TicketMessage",
    "UTCDateTime",
    "WebToken",
]
