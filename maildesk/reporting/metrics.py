"""Every report figure, defined once, as pure functions over :mod:`.rows` (definitions in
docs/reports.md). Periods are half-open: ``since <= t < until``; ``until`` is "now" for
the state of running clocks and the backlog. Hours are floats rounded to 2 places."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from maildesk.reporting.rows import Dataset, RatingRow, Reply, StatusChange, TicketRow
from maildesk.sla.businesshours import BusinessHours
from maildesk.sla.deadlines import SlaConfig, TicketClock, evaluate
from maildesk.vocab import DONE_STATES, OPEN_STATES

__all__ = [
    "AGE_BUCKETS",
    "agents",
    "backlog",
    "build_report",
    "durations",
    "p90",
    "reopens",
    "satisfaction",
    "sla_compliance",
    "summary",
    "volume",
]

AGE_BUCKETS = (("<1d", 1), ("1-3d", 3), ("3-7d", 7), ("7-30d", 30), (">30d", None))
BAD = 2  # a score at or below this is a bad rating (scores are 1..5)


def _in(at: datetime | None, since: datetime, until: datetime) -> bool:
    return at is not None and since <= at < until


def _week(at: datetime) -> str:
    monday = at.date() - timedelta(days=at.weekday())
    return monday.isoformat()


def p90(values: list[float]) -> float | None:
    """Nearest-rank 90th percentile: the smallest value with at least 90% of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def summary(hours: list[float]) -> dict:
    return {"count": len(hours), "median_hours": round(statistics.median(hours), 2) if hours else None,
            "p90_hours": round(p90(hours), 2) if hours else None}


def _created(tickets: list[TicketRow], since: datetime, until: datetime) -> list[TicketRow]:
    return [t for t in tickets if _in(t.created_at, since, until) and not t.spam]


def volume(tickets: list[TicketRow], since: datetime, until: datetime) -> dict:
    """Tickets created in the period (spam counted apart), by day, ISO week (its Monday), team, channel, priority."""
    real = _created(tickets, since, until)
    days, d = {}, since.date()
    while d < until.date() or (d == until.date() and until.time() != datetime.min.time()):
        days[d.isoformat()] = 0
        d += timedelta(days=1)
    for t in real:
        days[t.created_at.date().isoformat()] = days.get(t.created_at.date().isoformat(), 0) + 1
    return {"created": len(real), "spam": sum(1 for t in tickets if _in(t.created_at, since, until) and t.spam),
            "by_day": days, "by_week": dict(sorted(Counter(_week(t.created_at) for t in real).items())),
            "by_team": dict(sorted(Counter(t.team or "-" for t in real).items())),
            "by_channel": dict(sorted(Counter(t.channel for t in real).items())),
            "by_priority": dict(sorted(Counter(t.priority for t in real).items()))}


def _hours_of(sla: SlaConfig | None, t: TicketRow) -> tuple[BusinessHours, tuple]:
    if sla is None:
        return BusinessHours.always(), ()
    policy = sla.policy_for(t.priority, t.team, t.sla_policy)
    return policy.hours, (t.pauses if policy.pause_when_pending else ())


def durations(tickets: list[TicketRow], sla: SlaConfig | None, since: datetime, until: datetime) -> dict:
    """First response: tickets created in the period and answered before ``until``, from
    creation to the first agent reply. Resolution: tickets resolved in the period, from
    creation to ``resolved_at``. Calendar time counts everything; business time counts only
    the ticket's policy's open hours, less pending pauses when the policy pauses on pending."""
    out = {}
    for name, pick in (("first_response", lambda t: t.first_response_at if _in(t.created_at, since, until) and not t.spam else None),
                       ("resolution", lambda t: t.resolved_at if not t.spam and _in(t.resolved_at, since, until) else None)):
        cal, bus = [], []
        for t in tickets:
            end = pick(t)
            if end is None or end >= until:
                continue
            hours, pauses = _hours_of(sla, t)
            cal.append((end - t.created_at).total_seconds() / 3600)
            bus.append(hours.elapsed(t.created_at, end, exclude=[p for p in pauses if p[0] < end]).total_seconds() / 3600)
        out[name] = {"calendar": summary(cal), "business": summary(bus), "calendar_hours": [round(h, 2) for h in cal],
                     "business_hours": [round(h, 2) for h in bus]}
    return out


_STATE = {"met": "met", "missed": "breached", "breached": "breached", "ok": "running", "warning": "running"}


def sla_compliance(tickets: list[TicketRow], sla: SlaConfig | None, since: datetime, until: datetime) -> dict:
    """Tickets created in the period, each target of its policy judged at ``until``: met
    (stopped within the goal), breached (stopped after it, or running past it), running."""
    if sla is None:
        return {"configured": False, "by_target": {}, "by_policy": {}, "by_week": {}}
    by_target: dict = defaultdict(Counter)
    by_policy: dict = defaultdict(Counter)
    by_week: dict = defaultdict(Counter)
    for t in _created(tickets, since, until):
        policy = sla.policy_for(t.priority, t.team, t.sla_policy)
        clock = TicketClock(opened_at=t.created_at, first_response_at=t.first_response_at if t.first_response_at and t.first_response_at < until else None,
                            resolved_at=t.resolved_at if t.resolved_at and t.resolved_at < until else None,
                            pauses=tuple(p for p in t.pauses if p[0] < until))
        for target, status in evaluate(policy, t.priority, clock, until).items():
            state = _STATE[status.state]
            by_target[target][state] += 1
            by_policy[policy.name][state] += 1
            by_week[_week(t.created_at)][state] += 1

    def share(c: Counter) -> dict:
        done = c["met"] + c["breached"]
        return {"met": c["met"], "breached": c["breached"], "running": c["running"],
                "met_share": round(c["met"] / done, 4) if done else None}

    return {"configured": True, "by_target": {k: share(v) for k, v in sorted(by_target.items())},
            "by_policy": {k: share(v) for k, v in sorted(by_policy.items())},
            "by_week": {k: share(v) for k, v in sorted(by_week.items())}}


def _bucket(age: timedelta) -> str:
    for name, days in AGE_BUCKETS:
        if days is None or age < timedelta(days=days):
            return name
    return AGE_BUCKETS[-1][0]


def backlog(tickets: list[TicketRow], until: datetime) -> dict:
    """Tickets created before ``until`` and not resolved by then (spam left out); age from
    creation to ``until``; status is the ticket's status now."""
    rows = [t for t in tickets if not t.spam and t.created_at < until and (t.resolved_at is None or t.resolved_at >= until)
            and (t.status in OPEN_STATES or t.resolved_at is not None)]
    ages = Counter(_bucket(until - t.created_at) for t in rows)
    return {"open": len(rows), "by_age": {name: ages.get(name, 0) for name, _ in AGE_BUCKETS},
            "by_status": dict(sorted(Counter(t.status for t in rows).items()))}


def reopens(tickets: list[TicketRow], changes: list[StatusChange], since: datetime, until: datetime, repeat_days: float = 7) -> dict:
    """Reopen rate: of the tickets set resolved or closed in the period, the share set back
    to new/open/pending afterwards (before ``until``). Repeat contacts: tickets created in
    the period whose requester opened another ticket in the ``repeat_days`` before it (at the
    same instant: one with a lower number)."""
    done: dict[int, datetime] = {}
    for c in changes:
        if c.new in DONE_STATES and c.old not in DONE_STATES and _in(c.at, since, until):
            done.setdefault(c.ticket_id, c.at)
    reopened = {c.ticket_id for c in changes if c.ticket_id in done and c.old in DONE_STATES and c.new in OPEN_STATES and done[c.ticket_id] <= c.at < until}
    by_requester: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for t in tickets:
        if not t.spam:
            by_requester[t.requester].append((t.created_at, t.id))
    window = timedelta(days=repeat_days)
    repeats = [t for t in _created(tickets, since, until)
               if any(t.created_at - window <= other[0] and other < (t.created_at, t.id) for other in by_requester[t.requester])]
    created = len(_created(tickets, since, until))
    return {"resolved": len(done), "reopened": len(reopened), "reopen_rate": round(len(reopened) / len(done), 4) if done else None,
            "repeat_days": repeat_days, "repeat_contacts": len(repeats),
            "repeat_share": round(len(repeats) / created, 4) if created else None,
            "repeat_requesters": dict(Counter(t.requester for t in repeats).most_common(10))}


def satisfaction(ratings: list[RatingRow], since: datetime, until: datetime) -> dict:
    """Ratings given in the period: count, mean score, share of bad (score <= 2), comments, weekly mean."""
    rows = [r for r in ratings if _in(r.at, since, until)]
    weeks: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        weeks[_week(r.at)].append(r.score)
    return {"responses": len(rows), "average": round(statistics.mean(r.score for r in rows), 2) if rows else None,
            "bad": sum(1 for r in rows if r.score <= BAD), "bad_share": round(sum(1 for r in rows if r.score <= BAD) / len(rows), 4) if rows else None,
            "comments": [{"ticket": r.ticket_id, "score": r.score, "comment": r.comment} for r in sorted(rows, key=lambda r: r.at) if r.comment.strip()],
            "by_week": {k: {"responses": len(v), "average": round(statistics.mean(v), 2)} for k, v in sorted(weeks.items())}}


def agents(tickets: list[TicketRow], replies: list[Reply], since: datetime, until: datetime) -> dict:
    """Per agent login: tickets handled (distinct tickets replied to in the period), replies
    in the period, median calendar hours to first response of the tickets whose first reply
    was theirs (in the period), and open load (open tickets assigned to them at ``until``)."""
    by_id = {t.id: t for t in tickets}
    out: dict[str, dict] = defaultdict(lambda: {"tickets_handled": 0, "replies": 0, "median_first_response_hours": None, "open_load": 0})
    handled: dict[str, set] = defaultdict(set)
    first: dict[int, Reply] = {}
    for r in sorted(replies, key=lambda r: r.at):
        first.setdefault(r.ticket_id, r)
        if _in(r.at, since, until):
            out[r.agent]["replies"] += 1
            handled[r.agent].add(r.ticket_id)
    firsts: dict[str, list[float]] = defaultdict(list)
    for tid, r in first.items():
        if _in(r.at, since, until) and tid in by_id:
            firsts[r.agent].append((r.at - by_id[tid].created_at).total_seconds() / 3600)
    for login, ids in handled.items():
        out[login]["tickets_handled"] = len(ids)
    for login, hours in firsts.items():
        out[login]["median_first_response_hours"] = round(statistics.median(hours), 2)
    for t in tickets:
        if t.assignee and not t.spam and t.status in OPEN_STATES and t.created_at < until:
            out[t.assignee]["open_load"] += 1
    return dict(sorted(out.items()))


def build_report(data: Dataset, sla: SlaConfig | None, since: datetime, until: datetime, *, team: str | None = None, repeat_days: float = 7) -> dict:
    """Every figure of the report as one JSON-ready dict."""
    return {
        "period": {"since": since.isoformat(), "until": until.isoformat(), "team": team},
        "volume": volume(data.tickets, since, until),
        "times": durations(data.tickets, sla, since, until),
        "sla": sla_compliance(data.tickets, sla, since, until),
        "backlog": backlog(data.tickets, until),
        "reopens": reopens(data.tickets, data.status_changes, since, until, repeat_days),
        "satisfaction": satisfaction(data.ratings, since, until),
        "agents": agents(data.tickets, data.replies, since, until),
    }

