"""Business-time arithmetic: when is a desk open, and how much open time lies between two instants.

A :class:`BusinessHours` is a time zone, a weekly timetable of local wall-clock intervals
(several per day allowed, ``"09:00-12:00,13:00-17:00"``) and holidays (fixed dates, or
``"12-25"`` for every year), or simply *always open* (calendar time, "24x7").

All arithmetic happens on real instants (UTC), so DST changes count as what they are: a
local interval 01:00-05:00 holds 3 hours on a spring-forward night and 5 on a fall-back
night. A wall-clock time that does not exist (02:30 on the spring-forward day) stands for
the instant the clock would have shown it (03:30 summer time); one that occurs twice
means its first occurrence.

The timetable is walked interval by interval, never minute by minute: a 200 business-hour
target is about 35 calendar days, i.e. ~50 interval steps.

Durations are written ``"4h"``, ``"30m"``, ``"1h30m"``, ``"2d"`` (:func:`parse_duration`);
``d`` means 24 hours and is only accepted where calendar time is counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "WEEKDAYS",
    "BusinessHours",
    "Pause",
    "hours_from_table",
    "parse_days",
    "parse_duration",
    "parse_holiday",
    "parse_intervals",
    "zone",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Interval = tuple[int, int]  # minutes after local midnight, start < end <= 1440
Pause = tuple[datetime, datetime | None]  # None: still paused
_FAR = datetime(9999, 1, 1, tzinfo=UTC)
_MAX_CLOSED_DAYS = 3 * 366  # a timetable closed this long in a row is a config mistake
_DURATION = re.compile(r"(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?", re.I)
_INTERVAL = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def zone(name: str) -> ZoneInfo:
    """ZoneInfo for an IANA name; ValueError with a readable message otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown time zone {name!r}; expected an IANA name like \"Europe/Berlin\"") from exc


def parse_duration(text: str | int, *, allow_days: bool = True) -> timedelta:
    """``"4h"``, ``"30m"``, ``"1h30m"``, ``"2d"`` (24 h each), ``"0"`` -> timedelta."""
    if isinstance(text, int) and not isinstance(text, bool) and text == 0:
        return timedelta(0)
    if not isinstance(text, str):
        raise ValueError(f"expected a duration like \"4h\", \"30m\" or \"1h30m\", got {text!r}")
    s = text.strip()
    m = _DURATION.fullmatch(s)
    if s == "0":
        return timedelta(0)
    if not s or not m:
        raise ValueError(f"expected a duration like \"4h\", \"30m\" or \"1h30m\", got {text!r}")
    days, hours, minutes = (int(g or 0) for g in m.groups())
    if m.group(1) and not allow_days:
        raise ValueError(f"{text!r}: days (\"d\", 24 hours) are only allowed for always-open (24x7) hours; "
                         "write business time in hours, e.g. \"16h\" for two 8-hour business days")
    return timedelta(days=days, hours=hours, minutes=minutes)


def parse_intervals(text: str) -> tuple[Interval, ...]:
    """``"09:00-12:00,13:00-17:00"`` -> ((540, 720), (780, 1020)); ``"closed"`` or ``""`` -> ()."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string like \"09:00-17:00\", got {text!r}")
    if text.strip().lower() in ("", "closed"):
        return ()
    out: list[Interval] = []
    for part in text.split(","):
        m = _INTERVAL.fullmatch(part.strip())
        if not m:
            raise ValueError(f"expected \"HH:MM-HH:MM\" intervals separated by commas, got {part.strip()!r}")
        h1, m1, h2, m2 = map(int, m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 1440:
            raise ValueError(f"{part.strip()!r}: not a time of day (00:00 to 24:00)")
        if end <= start:
            raise ValueError(f"{part.strip()!r}: the end must be after the start; "
                             "split a night shift at midnight (\"22:00-24:00\" and next day \"00:00-06:00\")")
        if out and start < out[-1][1]:
            raise ValueError(f"{part.strip()!r}: intervals must be in order and must not overlap")
        out.append((start, end))
    return tuple(out)


def parse_days(key: str) -> list[int]:
    """``"mon"`` -> [0]; ``"mon-fri"`` -> [0..4]; ``"fri-mon"`` wraps -> [4, 5, 6, 0]."""
    first, _, last = key.lower().partition("-")
    if first not in WEEKDAYS or (last and last not in WEEKDAYS):
        raise ValueError(f"{key!r} is not a weekday or range; expected mon..sun or a range like \"mon-fri\"")
    a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
    return [(a + i) % 7 for i in range((b - a) % 7 + 1)]


def parse_holiday(value: date | str) -> date | tuple[int, int]:
    """A TOML date ``2026-12-24`` / ``"2026-12-24"`` (that day), or ``"12-25"`` (every year)."""
    if isinstance(value, datetime):
        raise ValueError(f"expected a date, got a date-time {value!r}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            if re.fullmatch(r"\d{2}-\d{2}", value.strip()):
                d = date(2000, *map(int, value.strip().split("-")))  # a leap year, so 02-29 is accepted
                return (d.month, d.day)
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a date like 2026-12-24 or \"12-25\" for every year, got {value!r}")


@dataclass(frozen=True)
class BusinessHours:
    """Open times in one time zone. ``week[0]`` is Monday; each entry is a tuple of intervals."""

    timezone: str = "UTC"
    week: tuple[tuple[Interval, ...], ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()
    annual_holidays: frozenset[tuple[int, int]] = frozenset()  # (month, day)
    always_open: bool = False
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", zone(self.timezone))
        if len(self.week) != 7:
            raise ValueError("week must have 7 entries, Monday first")
        if not self.always_open and not any(self.week):
            raise ValueError("no open hours in the week; give at least one day, e.g. mon-fri = \"09:00-17:00\"")

    @classmethod
    def always(cls, timezone: str = "UTC") -> BusinessHours:
        """Calendar time (24x7); the zone only matters for showing times to people."""
        return cls(timezone=timezone, always_open=True)

    @classmethod
    def parse(cls, timezone: str, days: Mapping[str, str], holidays: Iterable[date | str] = ()) -> BusinessHours:
        """``parse("Europe/Berlin", {"mon-fri": "09:00-17:00"}, ["12-25"])``; ValueError on bad input."""
        hours, problems = hours_from_table({**days, "timezone": timezone, "holidays": list(holidays)})
        if hours is None:
            key, hint = problems[0]
            raise ValueError(f"{key}: {hint}" if key else hint)
        return hours

    # -- queries ------------------------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays or (day.month, day.day) in self.annual_holidays

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` falls inside an open interval (start included, end excluded)."""
        at = _utc(at, "at")
        if self.always_open:
            return True
        day = at.astimezone(self.tz).date()
        for d in (day - timedelta(days=1), day):  # an interval of 'yesterday' may end after local midnight by DST
            if self.is_holiday(d):
                continue
            if any(self._instant(d, s) <= at < self._instant(d, e) for s, e in self.week[d.weekday()]):
                return True
        return False

    def add(self, start: datetime, duration: timedelta, *, exclude: Sequence[Pause] = ()) -> datetime:
        """The first instant at which ``duration`` of open time has passed since ``start``.

        ``exclude`` lists (from, to) pauses whose time does not count (``to=None``: open
        ended). Raises ValueError when an open-ended pause stops the clock before the
        duration is reached. The result carries ``start``'s tzinfo.
        """
        s = _utc(start, "start")
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        if not duration:
            return start
        left = duration
        for a, b in self.spans(s, exclude=exclude):
            if b - a >= left:
                return (a + left).astimezone(start.tzinfo)
            left -= b - a
        raise ValueError("the clock is paused (an open-ended pause) before the duration is reached")

    def elapsed(self, start: datetime, end: datetime, *, exclude: Sequence[Pause] = ()) -> timedelta:
        """Open time between two instants, pauses in ``exclude`` left out; 0 if end <= start."""
        s, e = _utc(start, "start"), _utc(end, "end")
        total = timedelta(0)
        if e <= s:
            return total
        for a, b in self.spans(s, exclude=exclude):
            if a >= e:
                break
            total += min(b, e) - a
        return total

    def measure(
        self, start: datetime, end: datetime, marks: Sequence[timedelta], *, exclude: Sequence[Pause] = ()
    ) -> tuple[list[datetime | None], timedelta]:
        """One walk for several questions: the instant each amount of open time in ``marks``
        is reached after ``start`` (None when an open-ended pause comes first), and the open
        time between ``start`` and ``end``. Instants carry ``start``'s tzinfo."""
        s, e = _utc(start, "start"), _utc(end, "end")
        found: list[datetime | None] = [start if not m else None for m in marks]
        used = total = timedelta(0)
        for a, b in self.spans(s, exclude=exclude):
            length = b - a
            for i, m in enumerate(marks):
                if found[i] is None and total + length >= m:
                    found[i] = (a + (m - total)).astimezone(start.tzinfo)
            if a < e:
                used += min(b, e) - a
            total += length
            if b >= e and all(f is not None for f in found):
                break
        return found, used

    def spans(self, start: datetime, *, exclude: Sequence[Pause] = ()) -> Iterator[tuple[datetime, datetime]]:
        """Open (from, to) UTC spans from ``start`` on, in order, pauses cut out."""
        base = self._spans(_utc(start, "start"))
        if not exclude:
            yield from base
            return
        pauses = _merge(exclude)
        i = 0
        for a, b in base:
            while a < b:
                while i < len(pauses) and pauses[i][1] is not None and pauses[i][1] <= a:
                    i += 1
                if i == len(pauses) or pauses[i][0] >= b:
                    yield a, b
                    break
                pa, pb = pauses[i]
                if pa > a:
                    yield a, pa
                if pb is None:
                    return
                a = pb

    # -- internals ----------------------------------------------------------------------

    def _instant(self, day: date, minute: int) -> datetime:
        if minute == 1440:
            day, minute = day + timedelta(days=1), 0
        return datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.tz).astimezone(UTC)

    def _spans(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        if self.always_open:
            yield start, _FAR
            return
        day = start.astimezone(self.tz).date() - timedelta(days=1)
        closed = 0
        while closed < _MAX_CLOSED_DAYS:
            closed += 1
            intervals = () if self.is_holiday(day) else self.week[day.weekday()]
            for s, e in intervals:
                b = self._instant(day, e)
                if b <= start:
                    continue
                a = max(self._instant(day, s), start)
                if a < b:
                    closed = 0
                    yield a, b
            day += timedelta(days=1)
        raise ValueError(f"no open hours within {_MAX_CLOSED_DAYS} days (are all open days holidays?)")


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _merge(pauses: Iterable[Pause]) -> list[Pause]:
    """Sorted, merged UTC pauses; an open-ended one swallows everything after it."""
    items = sorted(((_utc(a, "pause start"), None if b is None else _utc(b, "pause end")) for a, b in pauses),
                   key=lambda p: p[0])
    out: list[Pause] = []
    for a, b in items:
        if b is not None and b <= a:
            continue
        if out and (out[-1][1] is None or a <= out[-1][1]):
            pa, pb = out[-1]
            out[-1] = (pa, None if pb is None or b is None else max(pb, b))
        else:
            out.append((a, b))
    return out


_TABLE_KEYS = ("timezone", "always_open", "holidays")


def hours_from_table(table: Mapping[str, object]) -> tuple[BusinessHours | None, list[tuple[str | None, str]]]:
    """An ``[hours.NAME]`` table (timezone, always_open, holidays, weekday keys) ->
    (BusinessHours, or None when it has problems; every problem as (key, what was expected))."""
    problems: list[tuple[str | None, str]] = []
    days, seen = {}, {}
    for key, value in table.items():
        if key in _TABLE_KEYS:
            continue
        try:
            for d in parse_days(key):
                if d in seen:
                    raise ValueError(f"{WEEKDAYS[d]} is already given by {seen[d]!r}")
                seen[d] = key
            days[key] = parse_intervals(value)
        except ValueError as exc:
            known = key.split("-")[0].lower() in WEEKDAYS
            problems.append((key, str(exc) if known else
                             f"unknown key; expected timezone, always_open, holidays or weekdays ({', '.join(WEEKDAYS)}, \"mon-fri\")"))
    tzname, always, holidays = table.get("timezone"), table.get("always_open", False), table.get("holidays", [])
    if not isinstance(tzname, str):
        return None, [*problems, ("timezone", "required: an IANA time zone name like \"Europe/Berlin\"")]
    try:
        zone(tzname)
    except ValueError as exc:
        return None, [*problems, ("timezone", str(exc))]
    if not isinstance(always, bool):
        return None, [*problems, ("always_open", f"expected true or false, got {always!r}")]
    if always:
        if days or holidays or problems:
            return None, [*problems, ("always_open", "always-open hours take no weekdays and no holidays")]
        return BusinessHours.always(tzname), []
    if not isinstance(holidays, list):
        return None, [*problems, ("holidays", "expected a list of dates, e.g. [2026-12-24, \"12-25\"]")]
    parsed = []
    for h in holidays:
        try:
            parsed.append(parse_holiday(h))
        except ValueError as exc:
            problems.append(("holidays", str(exc)))
    if problems:
        return None, problems
    if not any(days.values()):
        return None, [(None, "no open hours; give weekdays like mon-fri = \"09:00-17:00\" or set always_open = true")]
    week = tuple(next((iv for k, iv in days.items() if d in parse_days(k)), ()) for d in range(7))
    return BusinessHours(tzname, week, frozenset(h for h in parsed if isinstance(h, date)),
                         frozenset(h for h in parsed if isinstance(h, tuple))), []
