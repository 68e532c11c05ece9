"""When routing asked for an assignee and nobody could take the ticket.

A rule (or a team's own strategy) picks among agents who are available, on duty and below
their capacity; when none is, the ticket waits in its team's queue. :func:`note_unassigned`
records why as an ``unassigned`` event (``detail.reason``: "nobody in team tier1 can take
it: erin unavailable, bob off duty, carol at capacity (20/20)"), which ``tickets show``
prints, and tells the team's lead (the first admin when the ticket has no team or the
team no lead) by a ``no_assignee`` notification: once per ticket, not again for later
mail on it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select

from maildesk.desk import Desk
from maildesk.outgoing.notify import notify_agents
from maildesk.rules import Decision
from maildesk.storage.models import Event, Ticket, TicketMessage
from maildesk.storage.writer import Writer, opened_here
from maildesk.tickets.state import record

__all__ = ["EVENT", "note_unassigned"]

EVENT = "unassigned"
_TOLD_BEFORE = select(Event.id).where(Event.ticket_id == bindparam("ticket"), Event.kind == EVENT).limit(1)


def note_unassigned(w: Writer, desk: Desk, ticket: Ticket, decision: Decision | None, now: datetime,
                    message: TicketMessage | None = None) -> bool:
    """Record why the assignment ``decision`` asked for found nobody; True when it did so."""
    session = w.session
    if decision is None or decision.spam or ticket.spam or decision.assignee or not decision.assign_strategy:
        return False  # nothing was asked for, or someone was found
    if ticket.assignee is not None:
        return False  # a reply's rules found nobody new; the ticket has its agent
    first = opened_here(session, ticket) or session.execute(_TOLD_BEFORE, {"ticket": ticket.id}).first() is None
    lead = desk.directory.lead_for(ticket.team) if desk.directory is not None and first else None
    told = lead is not None and notify_agents(w, desk, ticket, "no_assignee", now, message=message, recipients=[lead],
                                              actor="routing rules", extra={"reason": decision.assign_reason}) > 0
    record(w, ticket, "system", EVENT, now, reason=decision.assign_reason, strategy=decision.assign_strategy,
           team=ticket.team, rule=decision.source("assign"), lead_told=lead.login if told else None)
    return True
