"""The pure math of SLA policies: deadlines, state, escalation, the customer's promise.

No I/O. The policies themselves and :func:`load_sla` / :func:`check_sla`, which read
``config/sla.toml``, are in :mod:`maildesk.sla.config` and re-exported here, so callers
need only this module. Every target counts *business time* in its policy's
:class:`~maildesk.sla.businesshours.BusinessHours` (calendar time when those are always open).

The scheduler stays stateless towards this module: it passes what the ticket row stores
(:class:`TicketClock`) and ``now`` to :func:`evaluate` and gets, per target, ``ok``,
``warning`` or ``breached`` (clock running) or ``met`` / ``missed`` (clock stopped in time /
late). The same input always gives the same answer. Escalation steps carry a stable
``index`` so the scheduler records which ones it ran and runs each once
(:func:`escalation_due`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from maildesk.sla.businesshours import Pause
from maildesk.sla.config import TARGETS, EscalationStep, SlaConfig, SlaPolicy, check_sla, load_sla
from maildesk.vocab import PRIORITIES

__all__ = [
    "TARGETS",
    "Deadline",
    "Deadlines",
    "EscalationStep",
    "SlaConfig",
    "SlaPolicy",
    "TargetStatus",
    "TicketClock",
    "check_sla",
    "deadlines",
    "describe_promise",
    "escalation_due",
    "evaluate",
    "load_sla",
    "next_response_due",
    "raised_priority",
]


@dataclass(frozen=True)
class Deadline:
    target: str
    goal: timedelta  # business time allowed
    due: datetime
    warn_at: datetime


@dataclass(frozen=True)
class Deadlines:
    first_response: Deadline | None
    resolution: Deadline | None

    @property
    def first_response_due(self) -> datetime | None:
        return self.first_response.due if self.first_response else None

    @property
    def resolution_due(self) -> datetime | None:
        return self.resolution.due if self.resolution else None


@dataclass(frozen=True)
class TicketClock:
    """What a ticket row stores, as the SLA sees it (aware datetimes)."""

    opened_at: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    awaiting_since: datetime | None = None  # oldest unanswered customer reply after the first response
    next_response_at: datetime | None = None  # the agent's answer to it, if any
    pauses: tuple[Pause, ...] = ()  # (pending_from, pending_until or None) periods


@dataclass(frozen=True)
class TargetStatus:
    target: str
    state: str  # ok | warning | breached (running) ; met | missed (stopped)
    goal: timedelta
    used: timedelta  # business time counted so far (up to the stop, or now)
    due: datetime | None  # None: paused before the goal was reached, due unknown
    warn_at: datetime | None
    paused: bool = False

    @property
    def remaining(self) -> timedelta:
        return self.goal - self.used


def raised_priority(priority: str) -> str:
    """low -> normal -> high -> urgent -> urgent."""
    i = PRIORITIES.index(priority) if priority in PRIORITIES else 1
    return PRIORITIES[min(i + 1, len(PRIORITIES) - 1)]


def _deadline(policy: SlaPolicy, target: str, priority: str, start: datetime) -> Deadline | None:
    goal = policy.goal(target, priority)
    if goal is None:
        return None
    due, warn = (policy.hours.add(start, g) for g in (goal, _share(goal, policy.warn_at)))
    return Deadline(target, goal, due, warn)


def deadlines(policy: SlaPolicy, priority: str, opened_at: datetime) -> Deadlines:
    """First-response and resolution deadlines of a new ticket (no pauses yet)."""
    return Deadlines(_deadline(policy, "first_response", priority, opened_at), _deadline(policy, "resolution", priority, opened_at))


def next_response_due(policy: SlaPolicy, priority: str, customer_replied_at: datetime) -> Deadline | None:
    """Deadline for answering a customer's reply (None when the policy sets no such target)."""
    return _deadline(policy, "next_response", priority, customer_replied_at)


def evaluate(policy: SlaPolicy, priority: str, clock: TicketClock, now: datetime) -> dict[str, TargetStatus]:
    """State of every target that applies to the ticket now. Pauses count only when the
    policy has ``pause_when_pending``; they stop every clock alike."""
    pauses = clock.pauses if policy.pause_when_pending else ()
    runs = [
        ("first_response", clock.opened_at, clock.first_response_at),
        ("resolution", clock.opened_at, clock.resolved_at),
    ]
    if clock.awaiting_since is not None:
        runs.append(("next_response", clock.awaiting_since, clock.next_response_at))
    out = {}
    for target, start, stop in runs:
        goal = policy.goal(target, priority)
        if goal is None:
            continue
        end = max(stop or now, start)
        (due, warn), used = policy.hours.measure(start, end, (goal, _share(goal, policy.warn_at)), exclude=pauses)
        if stop is not None:
            state = "met" if used <= goal else "missed"
        else:
            state = "breached" if used >= goal else "warning" if warn is not None and warn <= now else "ok"
        paused = stop is None and any(a <= now and (b is None or b > now) for a, b in pauses)
        out[target] = TargetStatus(target, state, goal, used, due, warn, paused)
    return out


def escalation_due(
    policy: SlaPolicy, target: str, breached_at: datetime, now: datetime, done: Collection[int] = (), pauses: Sequence[Pause] = ()
) -> list[EscalationStep]:
    """Steps for ``target`` whose time (``breached_at`` + ``after`` in business time) has
    come, minus the indices in ``done``. Call it only while the target is ``breached``, with
    the breach time recorded when it was first seen (a raised priority moves ``due``)."""
    pauses = pauses if policy.pause_when_pending else ()
    out = []
    for step in policy.escalation:
        if target in step.targets and step.index not in done:
            try:
                at = policy.hours.add(breached_at, step.after, exclude=pauses)
            except ValueError:  # paused for good before the step's time
                continue
            if at <= now:
                out.append(step)
    return out


_WORDS = {
    "en": {"within": "within {}", "h": ("hour", "hours"), "m": ("minute", "minutes"), "d": ("day", "days"),
           "bh": ("business hour", "business hours"), "bm": ("business minute", "business minutes"),
           "days": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
           "months": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                      "October", "November", "December"), "date": "{wd} {d} {mo} {t} {z}"},
    "de": {"within": "innerhalb von {}", "h": ("Stunde", "Stunden"), "m": ("Minute", "Minuten"), "d": ("Tag", "Tagen"),
           "bh": ("Geschäftsstunde", "Geschäftsstunden"), "bm": ("Minute Geschäftszeit", "Minuten Geschäftszeit"),
           "days": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
           "months": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
                      "Oktober", "November", "Dezember"), "date": "{wd}, {d}. {mo} {t} {z}"},
}


def describe_promise(policy: SlaPolicy, priority: str, opened_at: datetime, locale: str = "en") -> tuple[str, str] | None:
    """What the acknowledgement tells the customer about the first response, e.g.
    ``("within 4 business hours", "Monday 10:00 CET")``; the date is added when the due
    time is 6 or more days away. ``None`` when the policy sets no first-response target.
    Unknown locales fall back to English."""
    d = _deadline(policy, "first_response", priority, opened_at)
    if d is None:
        return None
    w = _WORDS.get(locale.split("_")[0].split("-")[0].lower(), _WORDS["en"])
    minutes = int(d.goal.total_seconds() // 60)
    business = not policy.hours.always_open
    if business:
        n, unit = (minutes // 60, "bh") if minutes % 60 == 0 else (minutes, "bm")
    else:
        n, unit = (minutes // 1440, "d") if minutes % 1440 == 0 else (minutes // 60, "h") if minutes % 60 == 0 else (minutes, "m")
    words = w["within"].format(f"{n} {w[unit][n != 1]}")
    local = d.due.astimezone(policy.hours.tz)
    abbr = local.tzname() or policy.hours.timezone
    abbr = f"UTC{abbr}" if abbr[0] in "+-" else abbr
    weekday, hhmm = w["days"][local.weekday()], local.strftime("%H:%M")
    if (local.date() - opened_at.astimezone(policy.hours.tz).date()).days >= 6:
        text = w["date"].format(wd=weekday, d=local.day, mo=w["months"][local.month - 1], t=hhmm, z=abbr)
    else:
        text = f"{weekday} {hhmm} {abbr}"
    return words, text


def _share(goal: timedelta, share: float) -> timedelta:
    return timedelta(seconds=round(goal.total_seconds() * share))

