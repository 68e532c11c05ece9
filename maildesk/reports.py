"""Reports for support leads: volume, response and resolution times, SLA, satisfaction,
agent load and repeat contacts, over a period. Read-only queries, plain dicts out."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maildesk.models import Agent, Contact, Event, Rating, Ticket

__all__ = ["format_report", "report"]

OPEN = ("new", "open", "pending")


def _hours(deltas: list[timedelta]) -> dict:
    if not deltas:
        return {"count": 0, "median_hours": None, "p90_hours": None}
    hours = sorted(d.total_seconds() / 3600 for d in deltas)
    p90 = hours[min(len(hours) - 1, round(0.9 * (len(hours) - 1)))]
    return {"count": len(hours), "median_hours": round(statistics.median(hours), 2), "p90_hours": round(p90, 2)}


def report(session: Session, since: datetime, until: datetime, prefix: str) -> dict:
    created = list(session.scalars(select(Ticket).where(Ticket.created_at >= since, Ticket.created_at < until,
                                                        Ticket.merged_into_id.is_(None))))
    real = [t for t in created if not t.spam]
    first = [t.first_response_at - t.created_at for t in real if t.first_response_at]
    resolved = list(session.scalars(select(Ticket).where(Ticket.resolved_at >= since, Ticket.resolved_at < until)))
    breaches = session.execute(select(Event.detail).where(Event.kind == "sla_breach", Event.at >= since, Event.at < until)).scalars()
    by_target = Counter(d.get("target", "?") for d in breaches)
    ratings = list(session.scalars(select(Rating.score).where(Rating.at >= since, Rating.at < until)))
    load = dict(session.execute(select(Agent.login, func.count(Ticket.id)).join(Ticket, Ticket.assignee_id == Agent.id)
                                .where(Ticket.status.in_(OPEN)).group_by(Agent.login)).all())
    per_requester = Counter(t.requester_id for t in real)
    repeaters = [(cid, n) for cid, n in per_requester.most_common(10) if n > 1]
    names = dict(session.execute(select(Contact.id, Contact.address).where(Contact.id.in_([c for c, _ in repeaters]))).all())
    return {
        "period": {"since": since.isoformat(), "until": until.isoformat()},
        "volume": {"created": len(real), "spam": len(created) - len(real), "resolved": len(resolved),
                   "by_priority": dict(Counter(t.priority for t in real)), "by_team": dict(Counter(t.team or "-" for t in real)),
                   "still_open": sum(1 for t in real if t.status in OPEN)},
        "first_response": _hours(first),
        "resolution": _hours([t.resolved_at - t.created_at for t in resolved if t.resolved_at]),
        "sla_breaches": dict(by_target),
        "satisfaction": {"ratings": len(ratings), "average": round(statistics.mean(ratings), 2) if ratings else None,
                         "bad": sum(1 for r in ratings if r <= 2), "good": sum(1 for r in ratings if r >= 4)},
        "agent_load": load,
        "repeat_contacts": [{"requester": names.get(cid, "?"), "tickets": n} for cid, n in repeaters],
    }


def format_report(r: dict) -> str:
    v, fr, rs, sat = r["volume"], r["first_response"], r["resolution"], r["satisfaction"]

    def h(x):
        return "-" if x is None else f"{x:.1f} h"

    repeats = ", ".join(f"{x['requester']} ({x['tickets']})" for x in r["repeat_contacts"]) or "none"
    lines = [
        f"Report {r['period']['since'][:16]} .. {r['period']['until'][:16]}",
        f"  tickets created   {v['created']} (+{v['spam']} spam), resolved {v['resolved']}, still open {v['still_open']}",
        f"  by priority       {', '.join(f'{k} {n}' for k, n in sorted(v['by_priority'].items())) or '-'}",
        f"  by team           {', '.join(f'{k} {n}' for k, n in sorted(v['by_team'].items())) or '-'}",
        f"  first response    median {h(fr['median_hours'])}, p90 {h(fr['p90_hours'])} ({fr['count']} answered)",
        f"  resolution        median {h(rs['median_hours'])}, p90 {h(rs['p90_hours'])} ({rs['count']} resolved)",
        f"  SLA breaches      {', '.join(f'{k} {n}' for k, n in r['sla_breaches'].items()) or 'none'}",
        f"  satisfaction      {sat['ratings']} rating(s), average {sat['average'] or '-'}, {sat['good']} good, {sat['bad']} bad",
        f"  open per agent    {', '.join(f'{k} {n}' for k, n in sorted(r['agent_load'].items())) or '-'}",
        f"  repeat contacts   {repeats}",
    ]
    return "\n".join(lines)
