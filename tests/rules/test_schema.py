"""rules.toml -> RuleSet: the syntax, the shipped file, and every error with file, line, rule and key."""

from __future__ import annotations

import tomllib

import pytest

from maildesk.errors import ConfigError
from maildesk.policy.agents import load_directory
from maildesk.rules import check_rules, load_rules
from maildesk.rules.schema import Actions, parse_rules
from tests.rules.helpers import ROOT, directory, ruleset, write

DIRECTORY = directory()


def shipped_sla_names() -> set[str]:
    return set(tomllib.loads((ROOT / "config" / "sla.toml").read_text())["policy"])


def test_shipped_rules_load_cleanly_with_every_name_checked():
    d = load_directory(ROOT / "config")
    path = ROOT / "config" / "rules.toml"
    assert check_rules(path, d, template_names={"ack"}, sla_names=shipped_sla_names()) == []
    rs = load_rules(path, d)
    assert 8 <= len(rs) <= 12
    vip = rs.rule("vip-outage")
    assert vip.stop and vip.then.priority == "urgent" and vip.then.team == "tier2"
    assert any(r.on == "reply" for r in rs.rules)
    assert any(r.then.spam for r in rs.rules)
    assert "office" in rs.hours


def test_defaults_and_both_table_styles():
    rs = ruleset("""
        [[rule]]
        name = "inline"
        when = { subject_contains = "x" }
        then = { priority = "high", tags = "one" }

        [[rule]]
        name = "subtables"
        on = "any"
        enabled = false
        stop = true
        description = "written as sub-tables"
        [rule.when]
        sender_domain = "example.org"
        [rule.then]
        notify = ["bob", "Ops@Example.test"]

        [[rule]]
        name = "no-when"
        then = { tags = ["all"] }
    """, DIRECTORY)
    a, b, c = rs.rules
    assert (a.on, a.enabled, a.stop, a.index, a.line) == ("new", True, False, 1, 3)  # the line of its name
    assert a.then == Actions(priority="high", tags=("one",))
    assert (b.on, b.enabled, b.stop, b.description, b.index) == ("any", False, True, "written as sub-tables", 2)
    assert b.then.notify == ("bob@example.test", "ops@example.test")  # logins resolve to addresses
    assert c.when.children == ()  # no conditions: matches everything


RULE = """
[[rule]]
name = "r1"
when = {when}
then = {then}
"""


@pytest.mark.parametrize(("when", "then", "key", "hint"), [
    ('{ subject_contain = "x" }', '{ tags = ["a"] }', "when.subject_contain", "did you mean 'subject_contains'?"),
    ('{ priority = "high" }', '{ tags = ["a"] }', "when.priority", "is an action: put it under then"),
    ('{ subject_matches = "(unclosed" }', '{ tags = ["a"] }', "when.subject_matches", "invalid regular expression '(unclosed'"),
    ('{ body_matches = ["ok", "[z-a]"] }', '{ tags = ["a"] }', "when.body_matches", "bad character range"),
    ("{ sender_domain = 3 }", '{ tags = ["a"] }', "when.sender_domain", "expected a domain or a list of domains"),
    ('{ sender_domain = "x@y.example" }', '{ tags = ["a"] }', "when.sender_domain", "is not a domain name"),
    ('{ vip = "yes" }', '{ tags = ["a"] }', "when.vip", "expected true or false"),
    ('{ header = { name = "X-A" } }', '{ tags = ["a"] }', "when.header", "exactly one of exists, equals, contains, matches"),
    ('{ header = { equals = "1" } }', '{ tags = ["a"] }', "when.header", "expected { name ="),
    ('{ business_hours = "night" }', '{ tags = ["a"] }', "when.business_hours", "unknown hours 'night'"),
    ('{ business_hours = "team:tier2" }', '{ tags = ["a"] }', "when.business_hours", "team 'tier2' has no hours"),
    ('{ business_hours = "team:sales" }', '{ tags = ["a"] }', "when.business_hours", "unknown team 'sales'"),
    ('{ any = { vip = true } }', '{ tags = ["a"] }', "when.any", "expected a list of condition tables"),
    ('{ any = [ { vip = true }, { subjekt = "x" } ] }', '{ tags = ["a"] }', "when.any[1].subjekt", "unknown condition 'subjekt'"),
    ('{ not = [ { vip = true } ] }', '{ tags = ["a"] }', "when.not", "expected one table"),
    ('{ all = [ {} ] }', '{ tags = ["a"] }', "when.all[0]", "empty condition table"),
    ('"vip"', '{ tags = ["a"] }', "when", "expected a table of conditions"),
    ("{ vip = true }", '{ priority = "critical" }', "then.priority", "expected a priority (low, normal, high, urgent)"),
    ("{ vip = true }", '{ status = "done" }', "then.status", "expected a status"),
    ("{ vip = true }", '{ team = "sales" }', "then.team", "expected a team from agents.toml (tier1, tier2, billing)"),
    ("{ vip = true }", '{ assign = "zed" }', "then.assign", "expected an agent login or a strategy"),
    ("{ vip = true }", '{ assign = "random" }', "then.assign", "round_robin"),
    ("{ vip = true }", '{ tags = ["two words"] }', "then.tags", "without spaces"),
    ("{ vip = true }", "{ ack = 0 }", "then.ack", "expected true or false"),
    ("{ vip = true }", '{ ack = false, ack_template = "ack" }', "then.ack", "contradict"),
    ("{ vip = true }", '{ notify = ["nobody"] }', "then.notify", "neither a mail address nor an agent login"),
    ("{ vip = true }", '{ colour = "red" }', "then.colour", "unknown action 'colour'"),
    ("{ vip = true }", '{ sender = "x@y.example" }', "then.sender", "is a condition: put it under when"),
    ("{ vip = true }", "{}", "then", "the rule does nothing"),
    ("{ vip = true }", '"urgent"', "then", "expected a table of actions"),
])
def test_rule_errors(when, then, key, hint):
    text = RULE.format(when=when, then=then)
    rs, problems = parse_rules(text, "rules.toml", DIRECTORY)
    assert len(problems) == 1, [str(p) for p in problems]
    p = problems[0]
    assert p.key == f'[[rule]] #1 "r1" {key}', str(p)
    assert hint in p.hint, str(p)
    assert p.line == (4 if key.startswith("when") else 5)
    assert rs.rules == ()  # a broken rule is never half-loaded


@pytest.mark.parametrize(("extra", "key", "hint"), [
    ('on = "update"', "on", "expected one of new, reply, any"),
    ('stop = "yes"', "stop", "expected true or false"),
    ("enabled = 1", "enabled", "expected true or false"),
    ('then2 = { tags = ["x"] }', "then2", "unknown rule key 'then2'; did you mean 'then'?"),
    ('priority = "high"', "priority", "is an action: put it under then"),
])
def test_rule_key_errors(extra, key, hint):
    text = RULE.format(when="{ vip = true }", then='{ tags = ["a"] }') + extra + "\n"
    problems = parse_rules(text, "rules.toml", DIRECTORY)[1]
    assert [(p.key, p.line) for p in problems] == [(f'[[rule]] #1 "r1" {key}', 6)]
    assert hint in problems[0].hint


def test_template_and_sla_names_are_checked_only_when_given():
    text = RULE.format(when="{ vip = true }", then='{ ack_template = "vip_ack", sla = "gold" }')
    assert parse_rules(text, "rules.toml", DIRECTORY)[1] == []
    problems = parse_rules(text, "rules.toml", DIRECTORY, template_names={"ack"}, sla_names={"standard", "premium"})[1]
    assert sorted(p.hint for p in problems) == [
        "unknown SLA policy 'gold'; SLA policies: premium, standard",
        "unknown template 'vip_ack'; templates found: ack",
    ]


def test_check_rules_reports_every_problem_with_file_line_and_rule(tmp_path):
    path = write(tmp_path / "rules.toml", """
        # a comment
        [hours.office]
        timezone = "Europe/Berlin"
        mon-fri = "9-5"

        [[rule]]
        name = "first"
        when = { subject_matches = "([a-z]+" }
        then = { priority = "highest" }

        [[rule]]
        name = "second"
        when = { any = [ { sender_domain = "ok.example" }, { recipient_is = "x@example.test" } ] }
        then = { team = "sales", assign = "zed", ack_template = "missing" }

        [[rule]]
        name = "first"
        then = { tags = ["ok"] }

        [[rule]]
        when = { vip = true }
        then = { tags = ["x"] }
        [bogus]
        x = 1
    """)
    problems = check_rules(path, DIRECTORY, template_names={"ack"})
    got = [(p.line, p.key) for p in problems]
    assert got == [
        (4, "[hours.office] mon-fri"),
        (8, '[[rule]] #1 "first" when.subject_matches'),
        (9, '[[rule]] #1 "first" then.priority'),
        (13, '[[rule]] #2 "second" when.any[1].recipient_is'),
        (14, '[[rule]] #2 "second" then.team'),
        (14, '[[rule]] #2 "second" then.assign'),
        (14, '[[rule]] #2 "second" then.ack_template'),
        (17, '[[rule]] #3 "first" name'),
        (20, "[[rule]] #4 name"),  # no name: the [[rule]] header line
        (23, "bogus"),
    ], [str(p) for p in problems]
    assert all(p.file == str(path) for p in problems)
    assert "duplicate rule name 'first'" in problems[7].hint
    assert str(problems[1]).startswith(f"{path}:8: [[rule]] #1 \"first\" when.subject_matches: invalid regular expression")
    with pytest.raises(ConfigError) as exc:
        load_rules(path, DIRECTORY)
    assert exc.value.line == 4  # load_rules raises the first one


def test_toml_syntax_error_has_a_line(tmp_path):
    path = write(tmp_path / "rules.toml", '[[rule]]\nname = "x"\nwhen = { vip = true\n')
    [p] = check_rules(path, DIRECTORY)
    assert p.line == 3 and p.hint.startswith("not valid TOML")


def test_missing_file(tmp_path):
    [p] = check_rules(tmp_path / "nope.toml", DIRECTORY)
    assert "cannot read the rules file" in p.hint
    with pytest.raises(ConfigError):
        load_rules(tmp_path / "nope.toml", DIRECTORY)


def test_rules_must_name_agents_and_teams_of_the_directory_they_are_loaded_with():
    text = RULE.format(when="{ vip = true }", then='{ team = "billing", assign = "dave" }')
    assert parse_rules(text, "rules.toml", DIRECTORY)[1] == []
    smaller = directory(text='[[agents]]\nlogin = "zoe"\nname = "Zoe"\naddress = "zoe@example.test"\n')
    assert [p.key.split()[-1] for p in parse_rules(text, "rules.toml", smaller)[1]] == ["then.team", "then.assign"]
