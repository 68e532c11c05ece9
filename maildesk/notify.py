"""Mail to agents about a ticket: new ticket, customer reply, assignment, internal note.

Recipients: the assignee; when unassigned, the members of the ticket's team; with
neither, every agent. Agents on leave (``available = false``) and agents who opted out
of that event kind (``notify_opt_out``) get nothing. Each notification's Reply-To is
the agent's own signed token address, so their answer is authenticated and threads.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maildesk.desk import Desk
from maildesk.mailer import queue_mail
from maildesk.models import Blob, Participant, Ticket, TicketMessage
from maildesk.quotes import REPLY_MARKER

__all__ = ["agents_on_ticket", "notify_addresses", "notify_agents"]


class _Att:
    def __init__(self, filename: str, content_type: str, data: bytes):
        self.filename, self.content_type, self.data = filename, content_type, data


def agents_on_ticket(session: Session, desk: Desk, ticket: Ticket) -> list:
    """The agents a ticket concerns: the assignee and agents who took part; while it is
    unassigned, also its team's members (every agent when it has no team)."""
    directory = desk.directory
    if directory is None:
        return []
    found = {}
    if ticket.assignee is not None and directory.agent(ticket.assignee.login):
        found[ticket.assignee.login] = directory.agent(ticket.assignee.login)
    for address in session.scalars(select(Participant.address).where(Participant.ticket_id == ticket.id,
                                                                     Participant.role == "agent")):
        agent = directory.agent_by_address(address)
        if agent is not None:
            found.setdefault(agent.login, agent)
    if ticket.assignee is None:  # unassigned: the whole team (or every agent) keeps an eye on it
        team = directory.team(ticket.team) if ticket.team else None
        for agent in directory.members(team) if team is not None else directory.agents:
            found.setdefault(agent.login, agent)
    return list(found.values())


def notify_agents(session: Session, desk: Desk, ticket: Ticket, event: str, now: datetime, *,
                  message: TicketMessage | None = None, recipients: list | None = None, actor: str = "",
                  exclude: tuple[str, ...] = (), template: str = "notification", extra: dict | None = None) -> int:
    """Queue one notification per agent; returns how many were queued."""
    if desk.directory is None or ticket.spam:
        return 0
    agents = recipients if recipients is not None else agents_on_ticket(session, desk, ticket)
    agents = [a for a in agents if a.login not in exclude and a.available and a.wants(event)]
    if not agents:
        return 0
    history = _history(session, desk, ticket, message)
    attachments = _forwardable(session, message, desk.config.workflow.notification_attachments_max)
    for agent in agents:
        _queue(session, desk, ticket, (agent.name, agent.address), event, now, template, agent=agent.login,
               message=message, attachments=attachments,
               extra={"history": history, "actor": actor, "agent_name": agent.name, **(extra or {})})
    desk.wake("outbox")
    return len(agents)


def notify_addresses(session: Session, desk: Desk, ticket: Ticket, addresses, event: str, now: datetime, *,
                     message: TicketMessage | None = None, template: str = "notification", extra: dict | None = None) -> int:
    """The same notification to plain addresses (not agents): no agent token, so no commands."""
    for address in addresses:
        _queue(session, desk, ticket, ("", address), event, now, template, message=message,
               extra={"history": [], "actor": "", "agent_name": "", "marker": "", **(extra or {})})
    desk.wake("outbox")
    return len(addresses)


def _queue(session: Session, desk: Desk, ticket: Ticket, to: tuple[str, str], event: str, now: datetime, template: str, *,
           agent: str | None = None, message: TicketMessage | None = None, attachments: tuple = (), extra: dict) -> None:
    queue_mail(session, desk.mail, ticket, kind="notification", template=template, to=[to], now=now, auto=True,
               agent=agent, record=False, answering=message.message_id if message is not None else None,
               attachments=attachments, headers={"Auto-Submitted": "auto-generated", "X-Maildesk-Event": event},
               extra={"event": event, "marker": REPLY_MARKER, "message": message,
                      "assignee": ticket.assignee.name if ticket.assignee else None, **extra})


def _forwardable(session: Session, message: TicketMessage | None, budget: int) -> tuple:
    """The message's attachments to copy into notifications, smallest first, within ``budget`` bytes."""
    out = []
    for a in sorted(message.attachments if message is not None else (), key=lambda a: a.size):
        if a.size > budget:
            break
        budget -= a.size
        out.append(_Att(a.filename, a.content_type, session.get(Blob, a.sha256).data))
    return tuple(out)


def _history(session: Session, desk: Desk, ticket: Ticket, current: TicketMessage | None) -> list[dict]:
    limit = desk.config.workflow.history_in_notifications
    rows = session.scalars(select(TicketMessage).where(TicketMessage.ticket_id == ticket.id,
                                                       TicketMessage.kind.in_(("customer", "agent_reply", "note")))
                           .order_by(TicketMessage.id.desc()).limit(limit + 1))
    out = []
    for m in rows:
        if current is not None and m.id == current.id:
            continue
        out.append({"when": f"{m.created_at:%Y-%m-%d %H:%M}", "who": m.from_name or m.from_addr, "kind": m.kind,
                    "text": " ".join((m.text or "").split())})
    return list(reversed(out[:limit]))
