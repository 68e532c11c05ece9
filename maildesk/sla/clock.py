"""SLA bookkeeping on the ticket row: which policy, stored deadlines, pauses.

The pure arithmetic is in :mod:`maildesk.sla.deadlines`; this module keeps the ticket's stored
fields in step with what happens to it (opened, priority changed, customer replied,
agent replied, pending entered or left) so the scheduler and reports read them.
"""

from __future__ import annotations

from datetime import datetime

from maildesk.sla.deadlines import SlaConfig, SlaPolicy, TicketClock, deadlines, describe_promise, next_response_due
from maildesk.storage.models import Ticket

__all__ = ["agent_replied", "clock_of", "customer_replied", "pause_for_status", "policy_of", "recompute", "start"]


def _dt(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def policy_of(sla: SlaConfig | None, ticket: Ticket) -> SlaPolicy | None:
    if sla is None:
        return None
    return sla.policy_for(ticket.priority, ticket.team, ticket.sla_policy)


def start(sla: SlaConfig | None, ticket: Ticket) -> dict | None:
    """Pick the policy and store the deadlines; returns the promise for the acknowledgement."""
    policy = policy_of(sla, ticket)
    if policy is None:
        return None
    ticket.sla_policy = policy.name
    recompute(sla, ticket)
    promise = describe_promise(policy, ticket.priority, ticket.created_at)
    return {"words": promise[0], "when": promise[1]} if promise else None


def recompute(sla: SlaConfig | None, ticket: Ticket) -> None:
    """Deadlines from the ticket's opening (after a priority or policy change)."""
    policy = policy_of(sla, ticket)
    if policy is None:
        return
    d = deadlines(policy, ticket.priority, ticket.created_at)
    ticket.first_response_due, ticket.resolution_due = d.first_response_due, d.resolution_due
    if ticket.awaiting_since is not None:
        nxt = next_response_due(policy, ticket.priority, ticket.awaiting_since)
        ticket.next_response_due = nxt.due if nxt else None


def customer_replied(sla: SlaConfig | None, ticket: Ticket, now: datetime) -> None:
    if ticket.first_response_at is None or ticket.awaiting_since is not None:
        return
    ticket.awaiting_since = now
    policy = policy_of(sla, ticket)
    nxt = next_response_due(policy, ticket.priority, now) if policy else None
    ticket.next_response_due = nxt.due if nxt else None


def agent_replied(ticket: Ticket, now: datetime) -> None:
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.awaiting_since = None
    ticket.next_response_due = None
    state = dict(ticket.sla_state or {})
    for key in ("warned", "breached", "steps"):
        if isinstance(state.get(key), dict):
            state[key] = {k: v for k, v in state[key].items() if k != "next_response"}
    ticket.sla_state = state


def pause_for_status(ticket: Ticket, old: str, new: str, now: datetime) -> None:
    """Waiting on the customer (pending) pauses the clocks; leaving pending resumes them."""
    pauses = [list(p) for p in (ticket.pauses or [])]
    if new == "pending" and old != "pending":
        pauses.append([now.isoformat(), None])
        ticket.pending_since, ticket.reminded_at = now, None
    elif old == "pending" and new != "pending":
        if pauses and pauses[-1][1] is None:
            pauses[-1][1] = now.isoformat()
        ticket.pending_since, ticket.reminded_at = None, None
    ticket.pauses = pauses


def clock_of(ticket: Ticket) -> TicketClock:
    pauses = tuple((_dt(a), _dt(b)) for a, b in (ticket.pauses or []))
    return TicketClock(opened_at=ticket.created_at, first_response_at=ticket.first_response_at,
                       resolved_at=ticket.resolved_at, awaiting_since=ticket.awaiting_since, pauses=pauses)
