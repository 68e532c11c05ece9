"""Routing: gather what the rules need, evaluate them (pure), apply the Decision to a ticket.

Every matched rule is recorded as a ticket event with the conditions that made it match,
so ``maildesk tickets show`` explains why a ticket got its priority, team and assignee.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maildesk.desk import Desk
from maildesk.parse.message import InboundMessage
from maildesk.policy.sync import db_agent
from maildesk.rules import Decision, RuleContext, evaluate
from maildesk.storage.models import Agent, AssignState, Ticket
from maildesk.storage.writer import Writer
from maildesk.tickets.state import record, set_status
from maildesk.vocab import OPEN_STATES

__all__ = ["apply_decision", "decide", "rule_context"]

_LOADS = (select(Agent.login, func.count(Ticket.id)).join(Ticket, Ticket.assignee_id == Agent.id)
          .where(Ticket.status.in_(OPEN_STATES)).group_by(Agent.login))
_LAST = select(AssignState.team, AssignState.last_login)


class _Lazy(Mapping):
    """A mapping filled by one query on first use: most messages never need agent loads."""

    def __init__(self, load):
        self._load, self._data = load, None

    def _get(self) -> dict:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key):
        return self._get()[key]

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def rule_context(session: Session, desk: Desk, known_contact: bool) -> RuleContext:
    """What the rules read, as committed in ``session`` (``maildesk rules test``)."""
    return _context(Writer(session), desk, known_contact)


def _context(w: Writer, desk: Desk, known_contact: bool) -> RuleContext:
    """What the rules read, including what ``w`` has changed and not written yet."""
    return RuleContext(directory=desk.directory, known_contact=known_contact,
                       open_tickets=_Lazy(lambda: w.open_tickets(_LOADS)), last_assigned=_Lazy(lambda: w.last_assigned(_LAST)))


def decide(w: Writer, desk: Desk, msg: InboundMessage, now: datetime, *, is_reply: bool,
           known_contact: bool) -> Decision | None:
    ruleset = desk.ruleset
    if ruleset is None or not len(ruleset):
        return None
    return evaluate(ruleset, msg, _context(w, desk, known_contact), now, is_reply=is_reply)


def apply_decision(w: Writer, desk: Desk, ticket: Ticket, decision: Decision, now: datetime) -> list[str]:
    """Change the ticket as decided, one event per matched rule and per change; returns
    the agent logins newly assigned (to be notified)."""
    for hit in decision.hits:
        if hit.matched:
            record(w, ticket, f"rule:{hit.rule}", "rule_matched", now, rule=hit.rule, reasons=list(hit.reasons))

    def by(action: str) -> str:
        return f"rule:{decision.source(action) or 'routing'}"

    if decision.spam and not ticket.spam:
        ticket.spam = True
        record(w, ticket, by("spam"), "spam", now, reason="marked as spam by a rule; kept, never acknowledged")
    if decision.priority and decision.priority != ticket.priority:
        record(w, ticket, by("priority"), "priority", now, old=ticket.priority, new=decision.priority)
        ticket.priority = decision.priority
    if decision.team and decision.team != ticket.team:
        record(w, ticket, by("team"), "team", now, old=ticket.team, new=decision.team)
        ticket.team = decision.team
    new_tags = [t for t in decision.tags if t not in (ticket.tags or [])]
    if new_tags:
        ticket.tags = [*(ticket.tags or []), *new_tags]
        record(w, ticket, by("tags"), "tags", now, added=new_tags)
    if decision.sla_policy and decision.sla_policy != ticket.sla_policy:
        record(w, ticket, by("sla"), "sla_policy", now, old=ticket.sla_policy, new=decision.sla_policy)
        ticket.sla_policy = decision.sla_policy
    if decision.status:
        set_status(w, ticket, decision.status, by("status"), now, reason="routing rule")
    assigned = []
    if decision.assignee and not decision.spam:
        row = db_agent(w.session, decision.assignee)
        if row is not None and ticket.assignee_id != row.id:
            record(w, ticket, by("assign"), "assigned", now, old=ticket.assignee.login if ticket.assignee else None,
                   new=decision.assignee, strategy=decision.assign_strategy, reason=decision.assign_reason)
            ticket.assignee = row
            assigned.append(decision.assignee)
    if decision.round_robin:
        w.round_robin(*decision.round_robin)
    return assigned
