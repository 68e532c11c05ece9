"""What the metrics read: plain rows queried once per report (tickets, status changes,
agent replies, ratings). The only module of the package that touches the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from maildesk.storage.models import Agent, Contact, Event, InboxMail, Rating, Ticket
from maildesk.vocab import OPEN_STATES

__all__ = ["Dataset", "RatingRow", "Reply", "StatusChange", "TicketRow", "load_dataset"]


@dataclass(frozen=True)
class TicketRow:
    id: int
    created_at: datetime
    team: str | None = None
    channel: str = "-"  # inbox.source of the ticket's first mail: smtp, lmtp, pipe, imap:<mailbox>
    priority: str = "normal"
    status: str = "new"
    requester: str = ""
    assignee: str | None = None  # login
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    pauses: tuple[tuple[datetime, datetime | None], ...] = ()
    sla_policy: str | None = None
    spam: bool = False
    subject: str = ""


@dataclass(frozen=True)
class StatusChange:
    ticket_id: int
    at: datetime
    old: str
    new: str


@dataclass(frozen=True)
class Reply:
    ticket_id: int
    at: datetime
    agent: str  # login


@dataclass(frozen=True)
class RatingRow:
    ticket_id: int
    at: datetime
    score: int
    comment: str = ""


@dataclass
class Dataset:
    tickets: list[TicketRow]
    status_changes: list[StatusChange] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    ratings: list[RatingRow] = field(default_factory=list)


def _dt(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def load_dataset(session: Session, until: datetime, team: str | None = None, since: datetime | None = None, repeat_days: float = 7) -> Dataset:
    """Every non-merged ticket created before ``until`` (of ``team`` if given), with its
    status changes, agent replies and rating. Times after ``until`` are kept: the metrics
    decide what counts. With ``since``, only the tickets some metric of that period reads:
    created since ``since - repeat_days``, still open, resolved since ``since``, or with a
    status change, agent reply or rating since ``since``."""
    first_mail = (select(InboxMail.ticket_id, func.min(InboxMail.id).label("first")).where(InboxMail.ticket_id.is_not(None))
                  .group_by(InboxMail.ticket_id).subquery())
    channel = select(InboxMail.source).join(first_mail, first_mail.c.first == InboxMail.id).where(
        first_mail.c.ticket_id == Ticket.id).scalar_subquery()
    q = (select(Ticket.id, Ticket.created_at, Ticket.team, channel, Ticket.queue, Ticket.priority, Ticket.status, Contact.address,
                Agent.login, Ticket.first_response_at, Ticket.resolved_at, Ticket.pauses, Ticket.sla_policy, Ticket.spam, Ticket.subject)
         .join(Contact, Contact.id == Ticket.requester_id).outerjoin(Agent, Agent.id == Ticket.assignee_id)
         .where(Ticket.merged_into_id.is_(None), Ticket.created_at < until))
    if team:
        q = q.where(Ticket.team == team)
    if since is not None:
        touched = select(Event.ticket_id).where(Event.at >= since, Event.at < until, Event.kind.in_(("status", "agent_reply")))
        rated = select(Rating.ticket_id).where(Rating.at >= since, Rating.at < until)
        q = q.where(or_(Ticket.created_at >= since - timedelta(days=repeat_days), Ticket.status.in_(OPEN_STATES),
                        Ticket.resolved_at >= since, Ticket.id.in_(touched), Ticket.id.in_(rated)))
    tickets = []
    for (tid, created, tteam, source, queue, prio, status, address, login, first, resolved, pauses, policy, spam, subject) in session.execute(q):
        ch = source or "-"
        if ch.startswith("imap") and queue:
            ch = f"imap:{queue}"
        tickets.append(TicketRow(tid, created, tteam, ch, prio, status, address, login, first, resolved,
                                 tuple((_dt(a), _dt(b)) for a, b in (pauses or [])), policy, bool(spam), subject or ""))
    ids = {t.id for t in tickets}
    changes, replies = [], []
    for tid, at, actor, kind, detail in session.execute(select(Event.ticket_id, Event.at, Event.actor, Event.kind, Event.detail)
                                                        .where(Event.kind.in_(("status", "agent_reply")), Event.at < until)
                                                        .order_by(Event.id)):
        if tid not in ids:
            continue
        if kind == "status":
            changes.append(StatusChange(tid, at, (detail or {}).get("old", ""), (detail or {}).get("new", "")))
        else:
            replies.append(Reply(tid, at, actor.removeprefix("agent:")))
    ratings = [RatingRow(tid, at, score, comment or "") for tid, at, score, comment in
               session.execute(select(Rating.ticket_id, Rating.at, Rating.score, Rating.comment).where(Rating.at < until)) if tid in ids]
    return Dataset(tickets, changes, replies, ratings)
