"""Assignment strategies: fairness, capacity, availability, working hours and skills."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from maildesk.policy.agents import STRATEGIES, Team
from maildesk.rules.assign import EVERYONE, REGISTRY, AssignState, candidates, ineligible, strategy
from tests.rules.helpers import MONDAY_10_BERLIN, directory, mail

FOUR = """
[[agents]]
login = "a1"
name = "A1"
address = "a1@example.test"
{a1}
[[agents]]
login = "a2"
name = "A2"
address = "a2@example.test"
{a2}
[[agents]]
login = "a3"
name = "A3"
address = "a3@example.test"
{a3}
[[agents]]
login = "a4"
name = "A4"
address = "a4@example.test"
{a4}
[[teams]]
name = "desk"
members = ["a1", "a2", "a3", "a4"]
"""


def four(**extra: str):
    return directory(text=FOUR.format(**{k: extra.get(k, "") for k in ("a1", "a2", "a3", "a4")}))


def run(name: str, d, state: AssignState, msg=None, now: datetime = MONDAY_10_BERLIN, tags=(), team: str = "desk"):
    return REGISTRY[name](d.team(team) or Team(team), d, state, msg or mail(), now, tags)


def test_registry_covers_every_team_strategy_of_the_directory():
    assert set(REGISTRY) == set(STRATEGIES) - {"none"}
    with pytest.raises(ValueError):
        strategy("round_robin")(lambda *a: None)


def simulate(name: str, d, tickets: int, open_tickets: dict[str, int] | None = None, **kw) -> Counter:
    """Assign ``tickets`` one after another, feeding back load and round-robin state like the daemon."""
    load = Counter(open_tickets or {})
    last: dict[str, str] = {}
    got: Counter = Counter()
    for _ in range(tickets):
        result = run(name, d, AssignState(dict(load), dict(last)), **kw)
        if result.login is None:
            got[None] += 1
            continue
        got[result.login] += 1
        load[result.login] += 1
        last["desk"] = result.login
    return got


def test_round_robin_over_100_tickets_spreads_evenly():
    assert simulate("round_robin", four(), 100) == {"a1": 25, "a2": 25, "a3": 25, "a4": 25}


def test_round_robin_follows_member_order_and_wraps():
    d = four()
    assert run("round_robin", d, AssignState()).login == "a1"
    assert run("round_robin", d, AssignState(last_assigned={"desk": "a2"})).login == "a3"
    assert run("round_robin", d, AssignState(last_assigned={"desk": "a4"})).login == "a1"
    assert run("round_robin", d, AssignState(last_assigned={"desk": "gone"})).login == "a1"  # left the team


def test_round_robin_skips_unavailable_and_full_agents():
    d = four(a2="available = false", a3="capacity = 2")
    got = simulate("round_robin", d, 99)
    assert got["a2"] == 0 and got["a3"] == 2
    assert got["a1"] + got["a4"] == 97 and abs(got["a1"] - got["a4"]) <= 1
    result = run("round_robin", d, AssignState({"a3": 2}, {"desk": "a1"}))
    assert result.login == "a4" and "skipped a2 unavailable, a3 at capacity (2/2)" in result.reason


def test_least_loaded_picks_the_lowest_load_and_breaks_ties_by_member_order():
    d = four()
    assert run("least_loaded", d, AssignState({"a1": 3, "a2": 1, "a3": 1, "a4": 2})).login == "a2"
    assert run("least_loaded", d, AssignState()).login == "a1"


def test_least_loaded_respects_capacity_and_skips_unavailable():
    d = four(a1="capacity = 3", a2="capacity = 5", a3="available = false", a4="capacity = 4")
    got = simulate("least_loaded", d, 20)
    assert got == {"a1": 3, "a2": 5, "a4": 4, None: 8}  # nobody above capacity, a3 never
    result = run("least_loaded", d, AssignState({"a1": 3, "a2": 5, "a4": 4}))
    assert result.login is None
    assert result.reason == "nobody in team desk can take it: a1 at capacity (3/3), a2 at capacity (5/5), a3 unavailable, a4 at capacity (4/4)"


def test_least_loaded_balances_a_skewed_start():
    got = simulate("least_loaded", four(), 20, open_tickets={"a1": 8, "a2": 0, "a3": 4, "a4": 0})
    assert got == {"a2": 8, "a4": 8, "a3": 4}  # everyone ends at 8 open, a1 gets none


def test_working_hours_make_agents_off_duty():
    d = four(a1='working_hours = { timezone = "Europe/Berlin", mon-fri = "09:00-17:00" }',
             a2='working_hours = { timezone = "America/New_York", mon-fri = "09:00-17:00" }')
    morning_berlin = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 Berlin, 04:00 New York
    assert run("round_robin", d, AssignState(last_assigned={"desk": "a4"}), now=morning_berlin).login == "a1"
    result = run("round_robin", d, AssignState(last_assigned={"desk": "a1"}), now=morning_berlin)
    assert result.login == "a3" and "a2 off duty" in result.reason
    evening = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # 21:00 Berlin, 15:00 New York
    assert [a.login for a in candidates(d.team("desk"), d, AssignState(), evening)[0]] == ["a2", "a3", "a4"]
    assert ineligible(d.agent("a1"), AssignState(), evening) == "off duty"


SKILLED = """
[[agents]]
login = "net"
name = "Net"
address = "net@example.test"
skills = ["networking", "dns", "vpn"]
[[agents]]
login = "db"
name = "Db"
address = "db@example.test"
skills = ["database", "backup"]
[[agents]]
login = "both"
name = "Both"
address = "both@example.test"
skills = ["dns", "database"]
[[agents]]
login = "away"
name = "Away"
address = "away@example.test"
skills = ["vpn", "dns", "networking"]
available = false
[[teams]]
name = "desk"
members = ["net", "db", "both", "away"]
skills = ["printer"]
"""


@pytest.mark.parametrize(("subject", "body", "tags", "load", "login"), [
    ("VPN drops every hour", "", (), {}, "net"),
    ("Restore from backup please", "The database lost a table.", (), {}, "db"),
    ("DNS and database both broken", "", (), {}, "both"),  # two wanted skills beat one
    ("Question", "our Dns resolver", (), {}, "net"),  # body counts too; net and both tie, member order
    ("Question", "our dns resolver", (), {"net": 3}, "both"),  # tie broken by load
    ("Question", "nothing specific", ("backup",), {}, "db"),  # a tag names a skill
    ("Question", "nothing specific", (), {"net": 2, "db": 1, "both": 2}, "db"),  # no skill: least loaded
    ("Printer jam", "", (), {"net": 1}, "db"),  # a team skill nobody has: least loaded
])
def test_skills(subject, body, tags, load, login):
    d = directory(text=SKILLED)
    result = run("skills", d, AssignState(load), msg=mail(subject=subject, body=body or "Hello"), tags=tags)
    assert result.login == login, result.reason
    assert result.strategy == "skills"


def test_skills_never_picks_an_unavailable_expert():
    d = directory(text=SKILLED)
    result = run("skills", d, AssignState({"net": 9}), msg=mail(subject="VPN and networking and DNS"))
    assert result.login == "net" and "skipped away unavailable" in result.reason


def test_everyone_pool_when_no_team():
    d = four(a1="available = false")
    result = run("least_loaded", d, AssignState({"a2": 2, "a3": 1, "a4": 1}), team=EVERYONE)
    assert result.login == "a3" and "the whole desk" in result.reason


def test_empty_team_assigns_nobody():
    d = directory(text=FOUR.format(a1="", a2="", a3="", a4="") + '[[teams]]\nname = "empty"\n')
    for name in REGISTRY:
        result = run(name, d, AssignState(), team="empty")
        assert result.login is None and "no members" in result.reason
