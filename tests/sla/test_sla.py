"""SLA policies: loading, deadlines, state, escalation timing and the customer's promise.

Office hours in these tests: Europe/Berlin, Mon-Fri 09:00-17:00, holidays 12-25, 12-26,
Good Friday 2026-04-03 and Easter Monday 2026-04-06. Berlin switches to summer time on
Sunday 2026-03-29. Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maildesk.errors import ConfigError
from maildesk.sla.businesshours import BusinessHours
from maildesk.sla.deadlines import (
    SlaPolicy,
    TicketClock,
    check_sla,
    deadlines,
    describe_promise,
    escalation_due,
    evaluate,
    load_sla,
    next_response_due,
    raised_priority,
)

BER = ZoneInfo("Europe/Berlin")
H, M = timedelta(hours=1), timedelta(minutes=1)
REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
[select]
default = "standard"
teams = { enterprise = "premium", billing = "standard" }
priorities = { urgent = "premium" }

[hours.office]
timezone = "Europe/Berlin"
mon-fri = "09:00-17:00"
holidays = ["12-25", "12-26", 2026-04-03, 2026-04-06]

[hours.always]
timezone = "Europe/Berlin"
always_open = true

[policy.standard]
hours = "office"
warn_at = 0.75
first_response = { low = "16h", normal = "8h", high = "4h", urgent = "1h" }
next_response = { normal = "4h" }
resolution = { normal = "40h", urgent = "8h" }

[[policy.standard.escalation]]
notify = "team_lead"

[[policy.standard.escalation]]
after = "1h"
raise_priority = true

[[policy.standard.escalation]]
target = "first_response"
after = "4h"
reassign_team = "tier2"

[policy.premium]
hours = "always"
pause_when_pending = false
first_response = { low = "7d", normal = "1d12h", high = "1h", urgent = "30m" }
resolution = { normal = "2d" }
"""


def b(*args) -> datetime:
    return datetime(*args, tzinfo=BER)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    path = tmp_path_factory.mktemp("sla") / "sla.toml"
    path.write_text(CONFIG)
    return load_sla(path)


@pytest.fixture
def std(cfg):
    return cfg.policies["standard"]


@pytest.fixture
def premium(cfg):
    return cfg.policies["premium"]


# -- loading ---------------------------------------------------------------------------


def test_example_file_loads():
    path = REPO / "config" / "sla.toml"
    assert check_sla(path) == []
    cfg = load_sla(path)
    assert cfg.default == "standard"
    std, premium = cfg.policies["standard"], cfg.policies["premium"]
    assert std.hours.timezone == "Europe/Berlin" and not std.hours.always_open
    assert std.hours.week[0] == ((540, 1020),) and std.hours.week[5] == ()
    assert premium.hours.always_open
    assert std.warn_at == 0.75 and std.pause_when_pending
    assert std.goal("first_response", "urgent") == H
    assert premium.goal("resolution", "low") == timedelta(days=5)
    assert [(s.index, s.action, s.after) for s in std.escalation] == [
        (0, "notify", timedelta(0)), (1, "raise_priority", H), (2, "reassign_team", 4 * H)]
    assert std.escalation[0].notify == "team_lead" and std.escalation[2].reassign_team == "tier2"
    assert std.escalation[2].targets == ("first_response",)
    assert std.escalation[1].targets == ("first_response", "next_response", "resolution")
    assert cfg.policy_for("normal", "tier2", None) is premium


def test_loaded_values(cfg, std, premium):
    assert set(cfg.policies) == {"standard", "premium"}
    assert std.goal("next_response", "low") is None  # not set: no target for that priority
    assert premium.goal("first_response", "normal") == 36 * H
    assert not premium.pause_when_pending
    assert std.escalation[0].after == timedelta(0)  # "after" defaults to the breach itself


@pytest.mark.parametrize(("priority", "team", "name", "expected"), [
    ("normal", None, None, "standard"),  # default
    ("normal", "enterprise", None, "premium"),  # team
    ("normal", "enterprise", "standard", "standard"),  # rule-selected name beats the team
    ("urgent", None, None, "premium"),  # priority
    ("urgent", "billing", None, "standard"),  # team beats priority
    ("normal", "sales", None, "standard"),  # unknown team -> default
    ("normal", "enterprise", "deleted-policy", "premium"),  # stale stored name falls through
    (None, None, None, "standard"),
])
def test_policy_for_precedence(cfg, priority, team, name, expected):
    assert cfg.policy_for(priority, team, name).name == expected


def test_single_policy_is_the_default(tmp_path):
    path = tmp_path / "sla.toml"
    path.write_text('[hours.h]\ntimezone = "UTC"\nmon = "09:00-10:00"\n[policy.only]\nhours = "h"\nresolution = { normal = "1h" }\n')
    assert load_sla(path).policy_for("normal").name == "only"


BASE = '[hours.office]\ntimezone = "Europe/Berlin"\nmon-fri = "09:00-17:00"\n\n'  # lines 1-4
OK_POLICY = '[policy.p]\nhours = "office"\nfirst_response = { normal = "8h" }\n'  # lines 5-7

ERRORS = [
    # (file text, the error as an operator reads it)
    (BASE + "[policy.p]\nhours = 'office'\n[policy.p.first_response]\nnormal = '1h'\nurgent = '2 hours'\n",
     '{f}:9: [policy.p.first_response] urgent: expected a duration like "4h", "30m" or "1h30m", got \'2 hours\''),
    (BASE + "[policy.p]\nhours = 'office'\nfirst_response = { normal = '2d' }\n",
     '{f}:7: [policy.p.first_response] normal: \'2d\': days ("d", 24 hours) are only allowed for always-open (24x7) hours; '
     'write business time in hours, e.g. "16h" for two 8-hour business days'),
    (BASE + "[policy.p]\nhours = 'ofice'\nfirst_response = { normal = '8h' }\n",
     "{f}:6: [policy.p] hours: expected the name of an [hours.NAME] table (office), got 'ofice'"),
    (BASE + "[policy.p]\nhours = 'office'\n",
     "{f}:5: [policy.p]: define at least one target table: first_response, next_response, resolution"),
    (BASE + "[policy.p]\nhours = 'office'\nwarn_at = '75%'\nfirst_response = { normal = '8h' }\n",
     "{f}:7: [policy.p] warn_at: expected a share between 0 and 1 like 0.75, got '75%'"),
    (BASE + "[policy.p]\nhours = 'office'\npause_when_pending = 'yes'\nfirst_response = { normal = '8h' }\n",
     "{f}:7: [policy.p] pause_when_pending: expected true or false, got 'yes'"),
    (BASE + "[policy.p]\nhours = 'office'\nfirst_response = '8h'\n",
     "{f}:7: [policy.p.first_response]: expected a table"),
    (BASE + "[policy.p]\nhours = 'office'\nfirst_response = { critical = '1h' }\n",
     "{f}:7: [policy.p.first_response] critical: unknown key; expected one of high, low, normal, urgent"),
    (BASE + "[policy.p]\nhours = 'office'\nfirst_response = { normal = '8h' }\nreply = 3\n",
     "{f}:8: [policy.p] reply: unknown key; expected one of escalation, first_response, hours, next_response, "
     "pause_when_pending, resolution, warn_at"),
    (BASE + OK_POLICY + "[[policy.p.escalation]]\nafter = '1h'\nnotify = 'team_lead'\nraise_priority = true\n",
     "{f}:8: [policy.p.escalation #1]: expected exactly one of notify, raise_priority, reassign_team"),
    (BASE + OK_POLICY + "[[policy.p.escalation]]\nnotify = 'team_lead'\n[[policy.p.escalation]]\nnotify = 'boss'\n",
     '{f}:11: [policy.p.escalation #2] notify: expected "team_lead", "assignee" or a mail address, got \'boss\''),
    (BASE + OK_POLICY + "[[policy.p.escalation]]\nraise_priority = false\n",
     "{f}:9: [policy.p.escalation #1] raise_priority: expected true, got False"),
    (BASE + OK_POLICY + "[[policy.p.escalation]]\nreassign_team = ''\n",
     "{f}:9: [policy.p.escalation #1] reassign_team: expected a team name like \"tier2\", got ''"),
    (BASE + OK_POLICY + "[[policy.p.escalation]]\ntarget = 'response'\nnotify = 'assignee'\n",
     "{f}:9: [policy.p.escalation #1] target: expected one of first_response, next_response, resolution "
     "or a list of them, got 'response'"),
    (BASE + OK_POLICY + "[[policy.p.escalation]]\ntarget = 'resolution'\nnotify = 'assignee'\n",
     "{f}:9: [policy.p.escalation #1] target: this policy sets no resolution targets"),
    (BASE + OK_POLICY + "[[policy.p.escalation]]\nafter = '-1h'\nnotify = 'assignee'\n",
     '{f}:9: [policy.p.escalation #1] after: expected a duration like "4h", "30m" or "1h30m", got \'-1h\''),
    (BASE + OK_POLICY + "escalation = 'notify'\n",
     "{f}:8: [policy.p] escalation: expected [[policy.NAME.escalation]] tables"),
    ('[hours.office]\nmon-fri = "09:00-17:00"\n' + OK_POLICY,
     '{f}:1: [hours.office] timezone: required: an IANA time zone name like "Europe/Berlin"'),
    ('[hours.office]\ntimezone = "Berlin"\nmon-fri = "09:00-17:00"\n' + OK_POLICY,
     '{f}:2: [hours.office] timezone: unknown time zone \'Berlin\'; expected an IANA name like "Europe/Berlin"'),
    ('[hours.office]\ntimezone = "UTC"\nmon-fri = "9-5"\n' + OK_POLICY,
     "{f}:3: [hours.office] mon-fri: expected \"HH:MM-HH:MM\" intervals separated by commas, got '9-5'"),
    ('[hours.office]\ntimezone = "UTC"\nweekdays = "09:00-17:00"\n' + OK_POLICY,
     '{f}:3: [hours.office] weekdays: unknown key; expected timezone, always_open, holidays or weekdays '
     '(mon, tue, wed, thu, fri, sat, sun, "mon-fri")'),
    ('[hours.office]\ntimezone = "UTC"\nmon-fri = "closed"\n' + OK_POLICY,
     '{f}:1: [hours.office]: no open hours; give weekdays like mon-fri = "09:00-17:00" or set always_open = true'),
    ('[hours.office]\ntimezone = "UTC"\nmon-fri = "09:00-17:00"\nholidays = "12-25"\n' + OK_POLICY,
     '{f}:4: [hours.office] holidays: expected a list of dates, e.g. [2026-12-24, "12-25"]'),
    ('[hours.office]\ntimezone = "UTC"\nmon-fri = "09:00-17:00"\nholidays = [2026-12-24T10:00:00]\n' + OK_POLICY,
     "{f}:4: [hours.office] holidays: expected a date, got a date-time datetime.datetime(2026, 12, 24, 10, 0)"),
    ('[hours.office]\ntimezone = "UTC"\nalways_open = true\nmon = "09:00-10:00"\n' + OK_POLICY,
     "{f}:3: [hours.office] always_open: always-open hours take no weekdays and no holidays"),
    ('[hours.office]\ntimezone = "UTC"\nalways_open = "yes"\n' + OK_POLICY,
     "{f}:3: [hours.office] always_open: expected true or false, got 'yes'"),
    (BASE + OK_POLICY + "[policy.q]\nhours = 'office'\nresolution = { normal = '8h' }\n",
     "{f}: [select] default: required when there are several policies; expected one of p, q"),
    ("[select]\ndefault = 'x'\n" + BASE + OK_POLICY,
     "{f}:2: [select] default: expected the name of a [policy.NAME] table (p), got 'x'"),
    ("[select]\npriorities = { critical = 'p' }\n" + BASE + OK_POLICY,
     "{f}:2: [select.priorities] critical: unknown key; expected one of high, low, normal, urgent"),
    ("[select]\nteams = { sales = 'gold' }\n" + BASE + OK_POLICY,
     "{f}:2: [select.teams] sales: expected the name of a [policy.NAME] table (p), got 'gold'"),
    (BASE, "{f}: no policies; add a [policy.NAME] table"),
    (BASE + OK_POLICY + "[policies.x]\nhours = 'office'\n",
     "{f}:8: policies: unknown key; expected one of hours, policy, select"),
    ("[policy.p\n", "{f}:1: not valid TOML: "),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_config_errors(tmp_path, text, expected):
    path = tmp_path / "sla.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_sla(path)
    assert str(exc.value).startswith(expected.format(f=path))
    assert exc.value.file == str(path)
    assert str(check_sla(path)[0]) == str(exc.value)


def test_check_sla_collects_every_problem(tmp_path):
    path = tmp_path / "sla.toml"
    path.write_text(
        '[select]\ndefault = "nope"\n'  # 1-2
        '[hours.office]\ntimezone = "Europe/Berln"\nmon-fri = "09:00-17:00"\n'  # 3-5
        '[policy.p]\nhours = "office"\nfirst_response = { normal = "2d", high = "0m" }\n'  # 6-8: '2d' checked as business time
        '[[policy.p.escalation]]\nnotify = "nobody"\nafter = "soon"\n'  # 9-11
    )
    errors = check_sla(path)
    assert [(e.line, e.key) for e in errors] == [
        (2, "[select] default"),
        (4, "[hours.office] timezone"),
        (8, "[policy.p.first_response] normal"),
        (8, "[policy.p.first_response] high"),
        (10, "[policy.p.escalation #1] notify"),
        (11, "[policy.p.escalation #1] after"),
    ]
    assert errors[3].hint == "expected a duration above zero"
    assert check_sla(tmp_path / "missing.toml")[0].hint.startswith("cannot read the SLA file")


# -- deadlines and state -----------------------------------------------------------------


def test_deadlines(std):
    # Opened Fri 27 Mar 15:30 CET, normal. First response 8h: 1.5h Fri, Mon 09:00 + 6.5h = 15:30 CEST;
    # warning at 6h: Mon 13:30. Resolution 40h: 1.5h Fri + Mon-Thu 32h = 33.5h; Fri 3 Apr and Mon 6 Apr
    # are holidays; Tue 7 Apr 09:00 + 6.5h = 15:30. Warning at 30h: 1.5 + Mon-Wed 24 = 25.5; Thu + 4.5h = 13:30.
    d = deadlines(std, "normal", b(2026, 3, 27, 15, 30))
    assert d.first_response_due == b(2026, 3, 30, 15, 30)
    assert d.first_response.warn_at == b(2026, 3, 30, 13, 30)
    assert d.resolution_due == b(2026, 4, 7, 15, 30)
    assert d.resolution.warn_at == b(2026, 4, 2, 13, 30)
    assert d.first_response.goal == 8 * H
    # The same in UTC (as the database hands it out) gives the same instants, in UTC.
    u = deadlines(std, "normal", datetime(2026, 3, 27, 14, 30, tzinfo=UTC))
    assert u.first_response_due == datetime(2026, 3, 30, 13, 30, tzinfo=UTC)
    assert u.first_response_due.tzinfo is UTC
    # No resolution target for "high": None.
    assert deadlines(std, "high", b(2026, 3, 27, 15, 30)).resolution is None


def test_next_response_due(std, premium):
    # Customer replied Mon 30 Mar 16:00 CEST; 4h: 1h Mon, Tue 09:00 + 3h = 12:00; warning at 3h: Tue 11:00.
    d = next_response_due(std, "normal", b(2026, 3, 30, 16))
    assert (d.due, d.warn_at) == (b(2026, 3, 31, 12), b(2026, 3, 31, 11))
    assert next_response_due(premium, "normal", b(2026, 3, 30, 16)) is None


OPENED = b(2026, 3, 23, 9)  # Monday 09:00 CET; normal: first response 8h (warn 6h), resolution 40h (warn 30h)


@pytest.mark.parametrize(("clock", "now", "target", "state", "used", "due"), [
    (TicketClock(OPENED), b(2026, 3, 23, 12), "first_response", "ok", 3 * H, b(2026, 3, 23, 17)),
    (TicketClock(OPENED), b(2026, 3, 23, 15), "first_response", "warning", 6 * H, b(2026, 3, 23, 17)),
    (TicketClock(OPENED), b(2026, 3, 23, 17), "first_response", "breached", 8 * H, b(2026, 3, 23, 17)),
    (TicketClock(OPENED), b(2026, 3, 25, 10), "first_response", "breached", 17 * H, b(2026, 3, 23, 17)),
    (TicketClock(OPENED), b(2026, 3, 25, 10), "resolution", "ok", 17 * H, b(2026, 3, 27, 17)),
    # answered Mon 16:00: 7h used, met; answered Tue 09:30: 8.5h, missed
    (TicketClock(OPENED, first_response_at=b(2026, 3, 23, 16)), b(2026, 3, 30), "first_response", "met", 7 * H, b(2026, 3, 23, 17)),
    (TicketClock(OPENED, first_response_at=b(2026, 3, 24, 9, 30)), b(2026, 3, 30), "first_response", "missed", 8.5 * H,
     b(2026, 3, 23, 17)),
    (TicketClock(OPENED, first_response_at=b(2026, 3, 23, 17)), b(2026, 3, 30), "first_response", "met", 8 * H, b(2026, 3, 23, 17)),
    # resolved Fri 27 Mar 17:00 = exactly 40h
    (TicketClock(OPENED, resolved_at=b(2026, 3, 27, 17)), b(2026, 4, 30), "resolution", "met", 40 * H, b(2026, 3, 27, 17)),
    # customer wrote Tue 10:00: 4h -> Tue 14:00
    (TicketClock(OPENED, b(2026, 3, 23, 10), awaiting_since=b(2026, 3, 24, 10)), b(2026, 3, 24, 13), "next_response", "warning",
     3 * H, b(2026, 3, 24, 14)),
    (TicketClock(OPENED, b(2026, 3, 23, 10), awaiting_since=b(2026, 3, 24, 10)), b(2026, 3, 24, 14), "next_response", "breached",
     4 * H, b(2026, 3, 24, 14)),
    (TicketClock(OPENED, b(2026, 3, 23, 10), awaiting_since=b(2026, 3, 24, 10), next_response_at=b(2026, 3, 24, 11)),
     b(2026, 3, 24, 14), "next_response", "met", H, b(2026, 3, 24, 14)),
    # pending Mon 11:00 - Tue 11:00: used 2h Mon + 1h Tue by 12:00; due: 2h Mon, Tue 11:00 + 6h = 17:00
    (TicketClock(OPENED, pauses=((b(2026, 3, 23, 11), b(2026, 3, 24, 11)),)), b(2026, 3, 24, 12), "first_response", "ok", 3 * H,
     b(2026, 3, 24, 17)),
])
def test_evaluate(std, clock, now, target, state, used, due):
    status = evaluate(std, "normal", clock, now)[target]
    assert (status.state, status.used, status.due) == (state, used, due)
    assert status.remaining == status.goal - used


def test_evaluate_open_pause_stops_the_clock(std):
    clock = TicketClock(OPENED, pauses=((b(2026, 3, 23, 11), None),))
    s = evaluate(std, "normal", clock, b(2026, 3, 25, 12))["first_response"]
    # 2h counted before the pause; due and warning unknown while pending
    assert (s.state, s.used, s.due, s.warn_at, s.paused) == ("ok", 2 * H, None, None, True)
    # paused after the warning time: the warning stays
    late = TicketClock(OPENED, pauses=((b(2026, 3, 23, 16), None),))
    s = evaluate(std, "normal", late, b(2026, 3, 25, 12))["first_response"]
    assert (s.state, s.used, s.due, s.warn_at, s.paused) == ("warning", 7 * H, None, b(2026, 3, 23, 15), True)


def test_evaluate_ignores_pauses_without_pause_when_pending(premium):
    clock = TicketClock(b(2026, 3, 23, 9), pauses=((b(2026, 3, 23, 9), None),))
    s = evaluate(premium, "urgent", clock, b(2026, 3, 23, 9, 30))["first_response"]
    assert (s.state, s.used, s.due, s.paused) == ("breached", 30 * M, b(2026, 3, 23, 9, 30), False)


def test_evaluate_only_targets_that_apply(std):
    assert set(evaluate(std, "high", TicketClock(OPENED), b(2026, 3, 23, 10))) == {"first_response"}
    assert evaluate(std, "whatever", TicketClock(OPENED), b(2026, 3, 23, 10)) == {}


def test_evaluate_is_repeatable(std):
    clock, now = TicketClock(OPENED, pauses=((b(2026, 3, 23, 11), b(2026, 3, 24, 11)),)), b(2026, 3, 24, 12)
    assert evaluate(std, "normal", clock, now) == evaluate(std, "normal", clock, now)


# -- escalation --------------------------------------------------------------------------

BREACH = b(2026, 3, 27, 16, 30)  # Friday; steps: #0 at once, #1 1h later = Mon 09:30, #2 4h later = Mon 12:30


@pytest.mark.parametrize(("target", "now", "done", "expected"), [
    ("first_response", b(2026, 3, 27, 16, 29), (), []),
    ("first_response", BREACH, (), [0]),
    ("first_response", b(2026, 3, 28, 12), (), [0]),  # Saturday: 1h of business time not yet over
    ("first_response", b(2026, 3, 30, 9, 29), (), [0]),
    ("first_response", b(2026, 3, 30, 9, 30), (), [0, 1]),
    ("first_response", b(2026, 3, 30, 9, 30), {0}, [1]),
    ("first_response", b(2026, 3, 30, 12, 30), {0, 1}, [2]),
    ("first_response", b(2026, 3, 30, 12, 30), (), [0, 1, 2]),
    ("resolution", b(2026, 3, 30, 12, 30), (), [0, 1]),  # step #2 is for first_response only
    ("next_response", b(2026, 4, 30), {0, 1}, []),
])
def test_escalation_due(std, target, now, done, expected):
    assert [s.index for s in escalation_due(std, target, BREACH, now, done)] == expected


def test_escalation_respects_pauses(std, premium):
    pending_monday = [(b(2026, 3, 30, 9), b(2026, 3, 30, 10))]  # step #1 moves from 09:30 to 10:30
    assert [s.index for s in escalation_due(std, "first_response", BREACH, b(2026, 3, 30, 10, 29), (), pending_monday)] == [0]
    assert [s.index for s in escalation_due(std, "first_response", BREACH, b(2026, 3, 30, 10, 30), (), pending_monday)] == [0, 1]
    still_pending = [(b(2026, 3, 27, 16, 45), None)]
    assert [s.index for s in escalation_due(std, "first_response", BREACH, b(2026, 5, 1), (), still_pending)] == [0]


@pytest.mark.parametrize(("priority", "raised"), [("low", "normal"), ("normal", "high"), ("high", "urgent"), ("urgent", "urgent")])
def test_raised_priority(priority, raised):
    assert raised_priority(priority) == raised


# -- what the customer is told -------------------------------------------------------------


def test_describe_promise_business_hours(std):
    # Fri 15:30 CET + 4h: 1.5h Fri, Mon 09:00 + 2.5h = Mon 11:30, by then summer time
    assert describe_promise(std, "high", b(2026, 3, 27, 15, 30)) == ("within 4 business hours", "Monday 11:30 CEST")
    assert describe_promise(std, "high", b(2026, 3, 27, 15, 30), "de") == ("innerhalb von 4 Geschäftsstunden", "Montag 11:30 CEST")
    assert describe_promise(std, "high", b(2026, 3, 27, 15, 30), "de_DE")[0] == "innerhalb von 4 Geschäftsstunden"
    assert describe_promise(std, "high", b(2026, 3, 27, 15, 30), "fr")[0] == "within 4 business hours"  # falls back to English
    assert describe_promise(std, "urgent", b(2026, 3, 23, 10)) == ("within 1 business hour", "Monday 11:00 CET")
    # Wed 23 Dec 15:30 + 16h: 1.5 Wed, 8 Thu 24th, 25th-27th closed, Mon 28th 09:00 + 6.5h = 15:30 (5 days: no date)
    assert describe_promise(std, "low", b(2026, 12, 23, 15, 30)) == ("within 16 business hours", "Monday 15:30 CET")
    # Given in UTC, told in the policy's zone
    assert describe_promise(std, "urgent", datetime(2026, 3, 23, 9, tzinfo=UTC)) == ("within 1 business hour", "Monday 11:00 CET")
    assert describe_promise(std, "whatever", b(2026, 3, 23, 10)) is None


def test_describe_promise_calendar_time(premium):
    assert describe_promise(premium, "high", b(2026, 3, 27, 15, 30)) == ("within 1 hour", "Friday 16:30 CET")
    assert describe_promise(premium, "urgent", b(2026, 3, 27, 23, 50)) == ("within 30 minutes", "Saturday 00:20 CET")
    # Fri 12:00 + 36h = Sun 00:00, still winter time (the switch is at 02:00)
    assert describe_promise(premium, "normal", b(2026, 3, 27, 12)) == ("within 36 hours", "Sunday 00:00 CET")
    # 7 days from Mon 23 Mar 10:00 CET = Mon 30 Mar 11:00 CEST (168 real hours); a week away: the date is named
    assert describe_promise(premium, "low", b(2026, 3, 23, 10)) == ("within 7 days", "Monday 30 March 11:00 CEST")
    assert describe_promise(premium, "low", b(2026, 3, 23, 10), "de") == ("innerhalb von 7 Tagen", "Montag, 30. März 11:00 CEST")
    assert describe_promise(premium, "urgent", b(2026, 3, 23, 10), "de")[0] == "innerhalb von 30 Minuten"


@pytest.mark.parametrize(("hours", "goal", "opened", "expected"), [
    (BusinessHours.parse("Europe/Berlin", {"mon-fri": "09:00-17:00"}), 90 * M, b(2026, 3, 23, 9),
     ("within 90 business minutes", "Monday 10:30 CET")),
    # Fri 6 Mar 16:00 EST + 2h: 1h Fri, Mon 9 Mar (after DST start) 10:00 EDT
    (BusinessHours.parse("America/New_York", {"mon-fri": "09:00-17:00"}), 2 * H, datetime(2026, 3, 6, 16, tzinfo=ZoneInfo("America/New_York")),
     ("within 2 business hours", "Monday 10:00 EDT")),
    (BusinessHours.parse("Asia/Tokyo", {"mon-fri": "09:00-18:00"}), 2 * H, datetime(2026, 7, 17, 17, tzinfo=ZoneInfo("Asia/Tokyo")),
     ("within 2 business hours", "Monday 10:00 JST")),
    # Sydney 10:00 AEST Mon 6 Apr = 00:00Z
    (BusinessHours.always("Australia/Sydney"), H, datetime(2026, 4, 5, 23, tzinfo=UTC), ("within 1 hour", "Monday 10:00 AEST")),
    (BusinessHours.always("America/Sao_Paulo"), H, datetime(2026, 4, 6, 12, tzinfo=UTC), ("within 1 hour", "Monday 10:00 UTC-03")),
])
def test_describe_promise_zones(hours, goal, opened, expected):
    policy = SlaPolicy("p", hours, {"first_response": {"normal": goal}})
    assert describe_promise(policy, "normal", opened) == expected
