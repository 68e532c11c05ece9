"""A small hand-built helpdesk history with known report figures (worked out in
tests/reporting/test_metrics.py). Office hours: UTC, Mon-Fri 09:00-17:00; 2026-11-02 is
a Monday. The report period is 2026-11-02 00:00 .. 2026-11-16 00:00 (two weeks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from maildesk.sla.businesshours import BusinessHours
from maildesk.sla.deadlines import SlaConfig, SlaPolicy
from maildesk.storage.models import Agent, Contact, Event, InboxMail, Rating, Ticket

__all__ = ["SINCE", "SLA", "TICKETS", "UNTIL", "at", "store_dataset"]


def at(day: int, hour: float = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=hour)


SINCE, UNTIL = at(2), at(16)
H = timedelta(hours=1)
SLA = SlaConfig(policies={"standard": SlaPolicy("standard", BusinessHours.parse("UTC", {"mon-fri": "09:00-17:00"}), targets={
    "first_response": {"low": 4 * H, "normal": 4 * H, "high": 1 * H},
    "resolution": {"low": 40 * H, "normal": 16 * H, "high": 8 * H}})}, default="standard")

# id: team, source, priority, status, requester, assignee, created, first response, resolved, pauses, spam
TICKETS = {
    1: ("billing", "smtp", "normal", "resolved", "a@acme.example", "alice", at(2, 9), at(2, 10), at(2, 17), [], False),
    2: ("billing", "imap:support", "high", "closed", "b@acme.example", "bob", at(2, 16), at(3, 10), at(4, 12), [(at(3, 12), at(4, 9))], False),
    3: ("support", "pipe", "normal", "open", "a@acme.example", "alice", at(6, 15), None, None, [], False),
    4: ("support", "smtp", "normal", "pending", "c@other.example", "bob", at(10, 9), at(10, 9.5), None, [(at(10, 10), None)], False),
    5: ("support", "smtp", "normal", "new", "spam@junk.example", None, at(11, 9), None, None, [], True),
    6: ("support", "smtp", "normal", "open", "d@other.example", "alice", at(20, 0, 10), at(21, 9, 10), None, [], False),
    7: ("support", "smtp", "low", "open", "e@other.example", "alice", at(12, 9), at(12, 11), None, [], False),
}
STATUS = [(1, at(2, 17), "open", "resolved"), (2, at(4, 12), "pending", "resolved"), (2, at(5, 9), "resolved", "closed"),
          (7, at(12, 13), "open", "resolved"), (7, at(13, 9), "resolved", "open"), (4, at(10, 10), "open", "pending")]
REPLIES = [(1, at(2, 10), "alice"), (6, at(21, 9, 10), "alice"), (2, at(3, 10), "bob"), (2, at(4, 11), "bob"),
           (4, at(10, 9.5), "bob"), (7, at(12, 11), "alice")]
RATINGS = [(1, at(3, 9), 5, "great"), (2, at(5, 10), 2, "slow"), (7, at(12, 14), 4, ""), (6, at(25, 0, 10), 1, "old")]


def store_dataset(session) -> None:
    """Insert the history as the daemon would have stored it."""
    agents = {login: Agent(login=login, name=login.title(), address=f"{login}@desk.example") for login in ("alice", "bob")}
    contacts = {}
    session.add_all(agents.values())
    for tid, (team, source, prio, status, req, assignee, created, first, resolved, pauses, spam) in TICKETS.items():
        if req not in contacts:
            contacts[req] = Contact(address=req, name=req.split("@")[0], created_at=created)
            session.add(contacts[req])
        session.flush()
        session.add(Ticket(id=tid, subject=f"ticket {tid}", status=status, priority=prio, requester_id=contacts[req].id,
                           assignee_id=agents[assignee].id if assignee else None, team=team, spam=spam, created_at=created, updated_at=created,
                           first_response_at=first, resolved_at=resolved, pauses=[[a.isoformat(), b.isoformat() if b else None] for a, b in pauses],
                           queue=source.split(":", 1)[1] if ":" in source else None, sla_policy="standard"))
        session.flush()
        session.add(InboxMail(received_at=created, source=source, size=10, sha256=f"{tid:064d}", raw=b"x", status="processed", ticket_id=tid))
    for tid, when, old, new in STATUS:
        session.add(Event(ticket_id=tid, at=when, actor="agent:alice", kind="status", detail={"old": old, "new": new}))
    for tid, when, login in REPLIES:
        session.add(Event(ticket_id=tid, at=when, actor=f"agent:{login}", kind="agent_reply", detail={}))
    for tid, when, score, comment in RATINGS:
        session.add(Rating(ticket_id=tid, at=when, score=score, comment=comment))
