"""Business-time arithmetic, checked against values worked out by hand in the comments.

DST dates used: Europe/Berlin 2026-03-29 (02:00 CET -> 03:00 CEST) and 2026-10-25
(03:00 CEST -> 02:00 CET); America/New_York 2026-03-08 and 2026-11-01;
Australia/Sydney 2026-04-05 (AEDT -> AEST) and 2026-10-04 (AEST -> AEDT); Asia/Tokyo none.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from maildesk.sla.businesshours import BusinessHours, parse_days, parse_duration, parse_holiday, parse_intervals

BER, NY, TYO, SYD = (ZoneInfo(z) for z in ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"))
H, M = timedelta(hours=1), timedelta(minutes=1)

OFFICE = BusinessHours.parse("Europe/Berlin", {"mon-fri": "09:00-17:00"}, [date(2026, 12, 25), "01-01"])
SPLIT = BusinessHours.parse("Europe/Berlin", {"mon-fri": "09:00-12:00,13:00-17:00"})
NIGHT = BusinessHours.parse("Europe/Berlin", {"mon-sun": "01:00-05:00"})  # straddles the DST switch hour
FULL_NY = BusinessHours.parse("America/New_York", {"mon-sun": "00:00-24:00"})
FULL_SYD = BusinessHours.parse("Australia/Sydney", {"mon-sun": "00:00-24:00"})
NY_OFFICE = BusinessHours.parse("America/New_York", {"mon-fri": "09:00-17:00"})
TOKYO = BusinessHours.parse("Asia/Tokyo", {"mon-fri": "09:00-18:00"}, [date(2026, 7, 20)])  # Marine Day
SYDNEY = BusinessHours.parse("Australia/Sydney", {"mon-fri": "09:00-17:00"}, [date(2026, 4, 3), date(2026, 4, 6)])
SHIFT = BusinessHours.parse("Europe/Berlin", {"mon": "22:00-24:00", "tue-fri": "00:00-06:00,22:00-24:00", "sat": "00:00-06:00"})
ALWAYS = BusinessHours.always("Europe/Berlin")


def b(*args) -> datetime:
    return datetime(*args, tzinfo=BER)


ADD_CASES = [
    # name, hours, start, duration, expected
    ("within hours", OFFICE, b(2026, 3, 23, 10), 2 * H, b(2026, 3, 23, 12)),
    ("spills into next day: 1h Mon + 1h Tue", OFFICE, b(2026, 3, 23, 16), 2 * H, b(2026, 3, 24, 10)),
    ("start before opening", OFFICE, b(2026, 3, 23, 7), H, b(2026, 3, 23, 10)),
    ("start after closing", OFFICE, b(2026, 3, 23, 18), H, b(2026, 3, 24, 10)),
    ("exactly to closing time ends at 17:00, not next morning", OFFICE, b(2026, 3, 23, 9), 8 * H, b(2026, 3, 23, 17)),
    ("start at closing time", OFFICE, b(2026, 3, 23, 17), 30 * M, b(2026, 3, 24, 9, 30)),
    ("zero duration outside hours is the start itself", OFFICE, b(2026, 3, 28, 12), timedelta(0), b(2026, 3, 28, 12)),
    ("Saturday start waits for Monday", OFFICE, b(2026, 3, 28, 12), 30 * M, b(2026, 3, 30, 9, 30)),
    # Fri 16:00 CET: 1h Fri, weekend incl. the spring-forward Sunday, 1h Mon -> 10:00 CEST
    ("weekend + spring DST", OFFICE, b(2026, 3, 27, 16), 2 * H, b(2026, 3, 30, 10)),
    ("weekend + fall DST", OFFICE, b(2026, 10, 23, 16), 2 * H, b(2026, 10, 26, 10)),
    # Thu 24 Dec 16:00: 1h, Fri 25 holiday, weekend, Mon 28 09:00 + 1h
    ("dated holiday", OFFICE, b(2026, 12, 24, 16), 2 * H, b(2026, 12, 28, 10)),
    # Thu 31 Dec 16:30: 30m, Fri 1 Jan 2027 ("01-01" every year), weekend, Mon 4 Jan 09:30
    ("yearly holiday", OFFICE, b(2026, 12, 31, 16, 30), H, b(2027, 1, 4, 9, 30)),
    # 200h = 25 business days = 5 full weeks from Mon 2 March 09:00 -> Fri 3 April 17:00 (CEST)
    ("200 business hours over 5 weeks and a DST change", OFFICE, b(2026, 3, 2, 9), 200 * H, b(2026, 4, 3, 17)),
    # 2000h = 250 business days = 50 weeks: without holidays the Friday of week 50, i.e.
    # Mon 2 Mar 2026 + 49 weeks (343 days) = Mon 8 Feb 2027, + 4 days = Fri 12 Feb 2027 17:00.
    # Fri 25 Dec 2026 and Fri 1 Jan 2027 are holidays: two more business days -> Tue 16 Feb.
    ("2000 business hours, two holidays", OFFICE, b(2026, 3, 2, 9), 2000 * H, b(2027, 2, 16, 17)),
    ("lunch break skipped", SPLIT, b(2026, 3, 23, 11), 2 * H, b(2026, 3, 23, 14)),
    ("start inside lunch", SPLIT, b(2026, 3, 23, 12, 30), 30 * M, b(2026, 3, 23, 13, 30)),
    # Mon 11:00: 1h to 12, 4h to 17 (5h), Tue 09-11 -> 11:00
    ("multi-interval, next day", SPLIT, b(2026, 3, 23, 11), 7 * H, b(2026, 3, 24, 11)),
    ("night shift across midnight is continuous", SHIFT, b(2026, 3, 23, 23), 2 * H, b(2026, 3, 24, 1)),
    # 01:00 CET = 00:00Z; 3h later = 03:00Z = 05:00 CEST: the spring-forward night holds 3 open hours
    ("spring-forward night has 3 hours", NIGHT, b(2026, 3, 29, 1), 3 * H, b(2026, 3, 29, 5)),
    ("spring-forward night, 4th hour is next night", NIGHT, b(2026, 3, 29, 1), 4 * H, b(2026, 3, 30, 2)),
    # 01:00 CEST = 23:00Z; +4h = 03:00Z = 04:00 CET: the fall-back night holds 5 open hours
    ("fall-back night has 5 hours", NIGHT, b(2026, 10, 25, 1), 4 * H, b(2026, 10, 25, 4)),
    ("24x7 across spring DST is real hours", ALWAYS, b(2026, 3, 28, 12), 24 * H, b(2026, 3, 29, 13)),
    ("24x7 across fall DST", ALWAYS, b(2026, 10, 24, 12), 24 * H, b(2026, 10, 25, 11)),
    # Fri 6 Mar 16:00 EST (21:00Z): 1h, weekend with DST start, Mon 9 Mar 10:00 EDT (14:00Z)
    ("New York weekend + DST", NY_OFFICE, datetime(2026, 3, 6, 16, tzinfo=NY), 2 * H, datetime(2026, 3, 9, 10, tzinfo=NY)),
    ("New York fall back", NY_OFFICE, datetime(2026, 10, 30, 16, tzinfo=NY), 2 * H, datetime(2026, 11, 2, 10, tzinfo=NY)),
    # Fri 17 Jul 17:00 JST: 1h, weekend, Mon 20 Jul Marine Day, Tue 21 Jul 09:00 + 2h
    ("Tokyo holiday Monday", TOKYO, datetime(2026, 7, 17, 17, tzinfo=TYO), 3 * H, datetime(2026, 7, 21, 11, tzinfo=TYO)),
    # Thu 2 Apr 16:00 AEDT: 1h, Good Friday, weekend with DST end, Easter Monday, Tue 7 Apr 10:00 AEST
    ("Sydney Easter + DST end", SYDNEY, datetime(2026, 4, 2, 16, tzinfo=SYD), 2 * H, datetime(2026, 4, 7, 10, tzinfo=SYD)),
    # A UTC start: Mon 23 Mar 08:00Z = 09:00 CET, +1h = 10:00 CET = 09:00Z, returned in UTC
    ("UTC in, UTC out", OFFICE, datetime(2026, 3, 23, 8, tzinfo=UTC), H, datetime(2026, 3, 23, 9, tzinfo=UTC)),
]


@pytest.mark.parametrize(("name", "hours", "start", "duration", "expected"), ADD_CASES, ids=[c[0] for c in ADD_CASES])
def test_add(name, hours, start, duration, expected):
    got = hours.add(start, duration)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()  # same tzinfo as start
    assert hours.elapsed(start, got) == duration  # elapsed() undoes add()


ELAPSED_CASES = [
    ("spring-forward night 00-06", NIGHT, b(2026, 3, 29, 0), b(2026, 3, 29, 6), 3 * H),
    ("fall-back night 00-06", NIGHT, b(2026, 10, 25, 0), b(2026, 10, 25, 6), 5 * H),
    ("full NY day, DST start: 23h", FULL_NY, datetime(2026, 3, 8, tzinfo=NY), datetime(2026, 3, 9, tzinfo=NY), 23 * H),
    ("full NY day, DST end: 25h", FULL_NY, datetime(2026, 11, 1, tzinfo=NY), datetime(2026, 11, 2, tzinfo=NY), 25 * H),
    ("full Sydney day, DST end: 25h", FULL_SYD, datetime(2026, 4, 5, tzinfo=SYD), datetime(2026, 4, 6, tzinfo=SYD), 25 * H),
    ("full Sydney day, DST start: 23h", FULL_SYD, datetime(2026, 10, 4, tzinfo=SYD), datetime(2026, 10, 5, tzinfo=SYD), 23 * H),
    ("24x7 Berlin noon to noon over DST", ALWAYS, b(2026, 3, 28, 12), b(2026, 3, 29, 12), 23 * H),
    ("one office week", OFFICE, b(2026, 3, 23), b(2026, 3, 30), 40 * H),
    ("office week with Christmas", OFFICE, b(2026, 12, 21), b(2026, 12, 28), 32 * H),
    ("end before start", OFFICE, b(2026, 3, 24), b(2026, 3, 23), timedelta(0)),
    ("weekend only", OFFICE, b(2026, 3, 28, 8), b(2026, 3, 29, 20), timedelta(0)),
    ("split day", SPLIT, b(2026, 3, 23, 8), b(2026, 3, 23, 20), 7 * H),
    ("mixed zones: 09:00Z..10:00 CET", OFFICE, datetime(2026, 3, 23, 8, tzinfo=UTC), b(2026, 3, 23, 10), H),
]


@pytest.mark.parametrize(("name", "hours", "start", "end", "expected"), ELAPSED_CASES, ids=[c[0] for c in ELAPSED_CASES])
def test_elapsed(name, hours, start, end, expected):
    assert hours.elapsed(start, end) == expected


@pytest.mark.parametrize("hours", [OFFICE, SPLIT, NIGHT, SHIFT, ALWAYS, SYDNEY, NY_OFFICE], ids=lambda h: h.timezone)
def test_add_and_elapsed_are_inverse_around_dst(hours):
    # Starts every 97 minutes over the Berlin/NY/Sydney DST weekends, durations up to 3 days.
    for base in (datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 26, tzinfo=UTC), datetime(2026, 10, 22, tzinfo=UTC),
                 datetime(2026, 4, 2, tzinfo=UTC)):
        for i, d in itertools.product(range(0, 90, 7), (0, 1, 59, 60, 61, 300, 481, 1440, 4320)):
            start = base + i * 97 * M
            end = hours.add(start, d * M)
            assert hours.elapsed(start, end) == d * M, (start, d)
            if d:
                assert hours.is_open(end - timedelta(seconds=1))  # the last second counted was open
            # elapsed() then add() lands on the end when it is open, else on the last open instant before it
            back = hours.add(start, hours.elapsed(start, end + 45 * M))
            assert back <= end + 45 * M
            assert hours.elapsed(back, end + 45 * M) == timedelta(0)


IS_OPEN = [
    (OFFICE, b(2026, 3, 23, 9), True),
    (OFFICE, b(2026, 3, 23, 16, 59, 59), True),
    (OFFICE, b(2026, 3, 23, 17), False),  # end is exclusive
    (OFFICE, b(2026, 3, 23, 8, 59), False),
    (OFFICE, b(2026, 3, 28, 12), False),  # Saturday
    (OFFICE, b(2026, 12, 25, 12), False),  # holiday
    (OFFICE, b(2027, 1, 1, 12), False),  # yearly holiday
    (OFFICE, datetime(2026, 3, 23, 8, 30, tzinfo=UTC), True),  # 09:30 CET
    (SPLIT, b(2026, 3, 23, 12, 30), False),
    (NIGHT, datetime(2026, 3, 29, 0, 59, tzinfo=UTC), True),  # 01:59 CET
    (NIGHT, datetime(2026, 3, 29, 1, 0, tzinfo=UTC), True),  # 03:00 CEST
    (NIGHT, datetime(2026, 3, 29, 3, 0, tzinfo=UTC), False),  # 05:00 CEST
    (SHIFT, b(2026, 3, 24, 0, 0), True),
    (ALWAYS, b(2026, 12, 25, 3), True),
]


@pytest.mark.parametrize(("hours", "at", "expected"), IS_OPEN)
def test_is_open(hours, at, expected):
    assert hours.is_open(at) is expected


def test_pauses_are_cut_out():
    start = b(2026, 3, 23, 9)
    assert OFFICE.add(start, 4 * H, exclude=[(b(2026, 3, 23, 10), b(2026, 3, 23, 11))]) == b(2026, 3, 23, 14)
    # Overlapping and unordered pauses merge: 10:00-12:00 paused
    pauses = [(b(2026, 3, 23, 11), b(2026, 3, 23, 12)), (b(2026, 3, 23, 10), b(2026, 3, 23, 11, 30))]
    assert OFFICE.add(start, 4 * H, exclude=pauses) == b(2026, 3, 23, 15)
    # Fri 15:00 +2h, pending Fri 16:00 to Mon 10:00: 1h Fri, the next hour Mon 10-11
    assert OFFICE.add(b(2026, 3, 27, 15), 2 * H, exclude=[(b(2026, 3, 27, 16), b(2026, 3, 30, 10))]) == b(2026, 3, 30, 11)
    open_ended = [(b(2026, 3, 23, 10), None)]
    assert OFFICE.elapsed(start, b(2026, 3, 23, 16), exclude=open_ended) == H
    assert OFFICE.add(start, 30 * M, exclude=open_ended) == b(2026, 3, 23, 9, 30)
    with pytest.raises(ValueError, match="paused"):
        OFFICE.add(start, 2 * H, exclude=open_ended)
    # an empty or inverted pause changes nothing
    assert OFFICE.add(start, H, exclude=[(b(2026, 3, 23, 9, 30), b(2026, 3, 23, 9, 30))]) == b(2026, 3, 23, 10)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.add(datetime(2026, 3, 23, 9), H)
    with pytest.raises(ValueError, match="negative"):
        OFFICE.add(b(2026, 3, 23, 9), -H)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        BusinessHours.parse("Mars/Base", {"mon": "09:00-17:00"})
    with pytest.raises(ValueError, match="no open hours"):
        BusinessHours.parse("UTC", {"mon-fri": "closed"})
    with pytest.raises(ValueError, match="fri: fri is already given by 'mon-fri'"):
        BusinessHours.parse("UTC", {"mon-fri": "09:00-17:00", "fri": "10:00-12:00"})
    # Only Mondays open, and every Monday for years a holiday: refuse instead of looping forever
    mondays = [date(2026, 3, 23) + timedelta(weeks=w) for w in range(200)]
    never = BusinessHours.parse("UTC", {"mon": "09:00-10:00"}, mondays)
    with pytest.raises(ValueError, match="no open hours within"):
        never.add(datetime(2026, 3, 23, tzinfo=UTC), H)


@pytest.mark.parametrize(("text", "days_ok", "expected"), [
    ("4h", False, 4 * H), ("30m", False, 30 * M), ("1h30m", False, 90 * M), ("1h 30m", False, 90 * M),
    ("90m", False, 90 * M), ("0m", False, timedelta(0)), ("0", False, timedelta(0)), (0, False, timedelta(0)),
    ("2d", True, 48 * H), ("1d12h", True, 36 * H),
])
def test_parse_duration(text, days_ok, expected):
    assert parse_duration(text, allow_days=days_ok) == expected


@pytest.mark.parametrize(("text", "days_ok", "message"), [
    ("4", True, 'expected a duration like "4h", "30m" or "1h30m", got \'4\''),
    ("4 hours", True, "expected a duration like"),
    ("", True, "expected a duration like"),
    (4, True, "expected a duration like"),
    (True, True, "expected a duration like"),
    ("30m1h", True, "expected a duration like"),
    ("2d", False, '\'2d\': days ("d", 24 hours) are only allowed for always-open (24x7) hours; '
                  'write business time in hours, e.g. "16h" for two 8-hour business days'),
])
def test_parse_duration_errors(text, days_ok, message):
    with pytest.raises(ValueError) as exc:
        parse_duration(text, allow_days=days_ok)
    assert str(exc.value).startswith(message)


def test_parse_intervals_days_and_holidays():
    assert parse_intervals("09:00-12:00, 13:00-17:00") == ((540, 720), (780, 1020))
    assert parse_intervals("00:00-24:00") == ((0, 1440),)
    assert parse_intervals("closed") == () == parse_intervals("")
    for bad, msg in [("9-17", "HH:MM-HH:MM"), ("17:00-09:00", "end must be after the start"), ("09:00-24:30", "not a time of day"),
                     ("24:00-24:00", "not a time of day"), ("13:00-17:00,09:00-12:00", "in order"), ("09:00-12:60", "not a time"),
                     (900, "expected a string")]:
        with pytest.raises(ValueError, match=msg):
            parse_intervals(bad)
    assert parse_days("mon-fri") == [0, 1, 2, 3, 4]
    assert parse_days("SAT") == [5]
    assert parse_days("fri-mon") == [4, 5, 6, 0]
    with pytest.raises(ValueError, match="not a weekday"):
        parse_days("monday")
    assert parse_holiday(date(2026, 12, 24)) == date(2026, 12, 24)
    assert parse_holiday("2026-12-24") == date(2026, 12, 24)
    assert parse_holiday("12-25") == (12, 25)
    assert parse_holiday("02-29") == (2, 29)
    for bad in ("12-32", "2026-13-01", datetime(2026, 1, 1), 20261224):
        with pytest.raises(ValueError, match="expected a date"):
            parse_holiday(bad)
