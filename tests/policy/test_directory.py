"""config/agents.toml -> Directory: lookups, merging, hours, and every error with its place."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from maildesk.config.toml import TomlLocator
from maildesk.errors import ConfigError
from maildesk.policy.agents import Directory, check_directory, load_directory
from tests.rules.helpers import AGENTS, ROOT, directory, write


def test_shipped_agents_file_loads_cleanly():
    assert check_directory(ROOT / "config") == []
    d = load_directory(ROOT / "config")
    assert d.agent("alice").is_admin
    assert {t.name for t in d.teams} >= {"tier1", "tier2", "billing"}
    assert all(d.agent(m) for t in d.teams for m in t.members)


@pytest.mark.parametrize(("address", "login"), [
    ("alice@example.test", "alice"),
    ("ALICE@EXAMPLE.TEST", "alice"),
    ("alice.admin@example.test", "alice"),  # an alias, written in mixed case in the file
    (" <bob@example.test> ", "bob"),
    ("nobody@example.test", None),
    ("bob+tag@example.test", None),  # a plus address is not the agent's address
])
def test_agent_by_address(tmp_path, address, login):
    agent = directory(tmp_path).agent_by_address(address)
    assert (agent.login if agent else None) == login


@pytest.mark.parametrize(("address", "vip"), [
    ("ceo@bigcorp.example.com", True),
    ("ops@eu.bigcorp.example.com", True),  # subdomain
    ("someone@notbigcorp.example.com", False),  # suffix but not a subdomain
    ("boss@partner.example.net", True),
    ("BOSS@Partner.Example.NET", True),
    ("intern@partner.example.net", False),  # only that address of the domain
    ("", False),
])
def test_is_vip(tmp_path, address, vip):
    assert directory(tmp_path).is_vip(address) is vip


def test_membership_is_merged_from_both_sides(tmp_path):
    text = AGENTS.replace('name = "tier2"\n', 'name = "tier2"\nmembers = ["bob"]\n')
    d = directory(tmp_path, text)
    assert d.team("tier1").members == ("bob", "carol", "erin")  # from agents' teams, file order
    assert d.team("tier2").members == ("bob", "alice", "carol")  # listed first, then the others
    assert d.agent("bob").teams == ("tier1", "tier2")
    assert [a.login for a in d.members(d.team("billing"))] == ["dave", "erin"]


def test_agent_fields_and_defaults(tmp_path):
    d = directory(tmp_path)
    bob, dave, erin = d.agent("bob"), d.agent("dave"), d.agent("erin")
    assert (bob.role, bob.capacity, bob.available, bob.working_hours) == ("agent", 5, True, None)
    assert d.agent("alice").capacity is None
    assert bob.wants("new_ticket")
    assert not erin.available and not erin.on_duty(datetime(2026, 3, 2, 10, tzinfo=UTC))
    assert dave.on_duty(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))  # 10:30 Berlin, Monday
    assert not dave.on_duty(datetime(2026, 3, 2, 17, 0, tzinfo=UTC))  # 18:00 Berlin
    assert not dave.on_duty(datetime(2026, 3, 7, 10, 0, tzinfo=UTC))  # Saturday
    assert d.team("tier1").hours.is_open(datetime(2026, 3, 2, 7, 30, tzinfo=UTC))  # 08:30 Berlin


def test_notify_opt_out(tmp_path):
    text = AGENTS.replace('skills = ["password"]', 'skills = ["password"]\nnotify_opt_out = ["new_ticket", "note"]')
    bob = directory(tmp_path, text).agent("bob")
    assert bob.notify_opt_out == ("new_ticket", "note")
    assert not bob.wants("note") and bob.wants("assigned")


AGENT = """
[[agents]]
login = "bob"
name = "Bob"
address = "bob@example.test"
{extra}
"""


@pytest.mark.parametrize(("extra", "key", "hint"), [
    ('role = "boss"', '[[agents]] #1 "bob" role', "expected one of agent, admin"),
    ('teams = ["tier9"]', '[[agents]] #1 "bob" teams', "unknown team 'tier9'"),
    ('teams = "tier1"', '[[agents]] #1 "bob" teams', "expected a list of strings"),
    ("capacity = -1", '[[agents]] #1 "bob" capacity', ">= 0"),
    ('capacity = "ten"', '[[agents]] #1 "bob" capacity', "expected an integer"),
    ('available = "yes"', '[[agents]] #1 "bob" available', "expected true or false"),
    ('notify_opt_out = ["everything"]', '[[agents]] #1 "bob" notify_opt_out', "unknown event 'everything'"),
    ('aliases = ["not-an-address"]', '[[agents]] #1 "bob" aliases', "is not a mail address"),
    ('colour = "red"', '[[agents]] #1 "bob" colour', "unknown key"),
    ('working_hours = { timezone = "Mars/Olympus", mon = "09:00-17:00" }', '[[agents]] #1 "bob" working_hours.timezone',
     "unknown time zone"),
    ('working_hours = { timezone = "UTC", mon = "9 to 5" }', '[[agents]] #1 "bob" working_hours.mon', "HH:MM"),
    ('working_hours = "always"', '[[agents]] #1 "bob" working_hours', "expected a table"),
])
def test_agent_errors(tmp_path, extra, key, hint):
    write(tmp_path / "agents.toml", AGENT.format(extra=extra))
    problems = check_directory(tmp_path)
    assert len(problems) == 1, [str(p) for p in problems]
    p = problems[0]
    assert p.key == key and hint in p.hint, str(p)
    assert p.file.endswith("agents.toml")
    assert p.line == 5  # the line of the offending key (the 5th line of the file)
    with pytest.raises(ConfigError):
        load_directory(tmp_path)


def test_check_directory_reports_every_problem_with_lines(tmp_path):
    write(tmp_path / "agents.toml", """
        vip = ["ok.example.com", "not a domain"]

        [[agents]]
        login = "Bob"
        name = "Bob"
        address = "bob@example.test"

        [[agents]]
        login = "carol"
        address = "bob@example.test"

        [[teams]]
        name = "tier1"
        members = ["zed"]
        strategy = "random"
    """)
    problems = check_directory(tmp_path)
    found = {(p.key, p.line) for p in problems}
    assert found == {
        ("vip", 1),
        ('[[agents]] #1 "Bob" login', 4),
        ('[[agents]] #2 "carol" name', 8),  # missing: points at the table header
        ('[[agents]] #2 "carol" address', 10),
        ('[[teams]] #1 "tier1" members', 14),
        ('[[teams]] #1 "tier1" strategy', 15),
    }, [str(p) for p in problems]
    dup = next(p for p in problems if p.key.endswith("address"))
    assert "already used by agent 'Bob'" in dup.hint
    assert str(dup).startswith(f"{tmp_path / 'agents.toml'}:10: [[agents]] #2")


@pytest.mark.parametrize(("text", "line", "hint"), [
    ("[[agents]\nlogin = 1\n", 1, "not valid TOML"),
    ("[[agents]]\nlogin = \n", 2, "not valid TOML"),
    ("teams = 3\n", 1, "expected [[teams]] tables"),
    ("owner = 'me'\n", 1, "unknown key"),
])
def test_file_level_errors(tmp_path, text, line, hint):
    write(tmp_path / "agents.toml", text)
    problems = check_directory(tmp_path)
    assert problems and problems[0].line == line and hint in problems[0].hint


def test_missing_file_is_one_error(tmp_path):
    problems = check_directory(tmp_path)
    assert len(problems) == 1 and "cannot read the agents file" in problems[0].hint


def test_duplicate_login_and_team_name(tmp_path):
    write(tmp_path / "agents.toml", AGENT.format(extra="") + AGENT.format(extra="").replace("bob@", "bob2@")
          + '[[teams]]\nname = "t"\n[[teams]]\nname = "t"\n')
    hints = sorted(p.hint for p in check_directory(tmp_path))
    assert hints == ["duplicate login 'bob'", "duplicate team name 't'"]


def test_empty_directory():
    d = Directory()
    assert d.agent("x") is None and d.team("x") is None and not d.is_vip("a@b.c") and d.agent_by_address("a@b.c") is None


def test_locator_finds_keys_in_blocks_and_subtables():
    where = TomlLocator('a = 1\n[[agents]]\nlogin = "x"\n[agents.working_hours]\nmon = "x"\n[[agents]]\nlogin = "y"\n')
    assert where.key_line("a") == 1
    assert where.block("agents", 0) == (2, 5)
    assert where.key_line("mon", where.block("agents", 0)) == 5
    assert where.key_line("login", where.block("agents", 1)) == 7
    assert where.block("agents", 2) is None
