"""Reloader: reload on change only, keep the last good directory and rules on errors."""

from __future__ import annotations

import os

import pytest

from maildesk.errors import ConfigError
from maildesk.rules.reload import Reloader
from tests.rules.helpers import AGENTS, write

RULES = '[[rule]]\nname = "to-bob"\nthen = { assign = "bob", tags = ["v1"] }\n'


@pytest.fixture
def config(tmp_path):
    write(tmp_path / "agents.toml", AGENTS)
    write(tmp_path / "rules.toml", RULES)
    return tmp_path


def bump(path, text):
    """Rewrite a file and make sure its mtime moves even on coarse-grained file systems."""
    st = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_initial_load_and_nothing_changed(config):
    r = Reloader(config)
    assert r.ruleset.rules[0].name == "to-bob" and r.directory.agent("bob")
    result = r.poll()
    assert (result.changed, result.reloaded, result.errors) == (False, False, ())


def test_bad_initial_config_raises(config):
    write(config / "rules.toml", '[[rule]]\nname = "x"\nthen = { team = "nope" }\n')
    with pytest.raises(ConfigError) as exc:
        Reloader(config)
    assert exc.value.line == 3


def test_a_good_change_is_swapped_in(config):
    r = Reloader(config)
    bump(config / "rules.toml", RULES.replace("v1", "v2"))
    result = r.poll()
    assert result.changed and result.reloaded and not result.errors
    assert r.ruleset.rules[0].then.tags == ("v2",)
    assert r.poll().changed is False  # seen once


def test_a_bad_change_keeps_the_last_good_rules_and_reports_every_error(config):
    r = Reloader(config)
    good = r.ruleset
    bump(config / "rules.toml", '[[rule]]\nname = "x"\nwhen = { subjec = "a" }\nthen = { priority = "meh" }\n')
    result = r.poll()
    assert result.changed and not result.reloaded
    assert [(e.line, e.key) for e in result.errors] == [(3, '[[rule]] #1 "x" when.subjec'), (4, '[[rule]] #1 "x" then.priority')]
    assert r.ruleset is good and r.last_errors == result.errors
    assert r.poll() == type(result)(False, False, ())  # the same bad file is not reported again
    bump(config / "rules.toml", RULES.replace("v1", "v3"))
    result = r.poll()
    assert result.reloaded and r.ruleset.rules[0].then.tags == ("v3",) and r.last_errors == ()


def test_directory_change_revalidates_the_rules_and_swaps_both_or_neither(config):
    r = Reloader(config)
    old_dir, old_rules = r.directory, r.ruleset
    without_bob = AGENTS.replace('login = "bob"', 'login = "robert"')
    bump(config / "agents.toml", without_bob)
    result = r.poll()
    assert not result.reloaded
    assert [e.key for e in result.errors] == ['[[rule]] #1 "to-bob" then.assign']  # the rules still name bob
    assert r.directory is old_dir and r.ruleset is old_rules
    bump(config / "rules.toml", RULES.replace('"bob"', '"robert"'))
    assert r.poll().reloaded
    assert r.directory.agent("robert") and r.ruleset.rules[0].then.assign == "robert"


def test_broken_agents_file_is_reported_and_old_directory_kept(config):
    r = Reloader(config)
    old = r.directory
    bump(config / "agents.toml", AGENTS + '\n[[teams]]\nname = "tier1"\n')
    result = r.poll()
    assert not result.reloaded and "duplicate team name 'tier1'" in result.errors[0].hint
    assert r.directory is old


def test_touch_without_content_change_reloads_nothing(config):
    r = Reloader(config)
    rules = r.ruleset
    bump(config / "rules.toml", RULES)
    assert r.poll() == type(r.poll())(False, False, ())
    assert r.ruleset is rules


def test_deleted_rules_file_is_an_error_that_keeps_the_rules(config):
    r = Reloader(config)
    (config / "rules.toml").unlink()
    result = r.poll()
    assert result.changed and not result.reloaded and "cannot read the rules file" in result.errors[0].hint
    assert r.ruleset.rules


def test_template_and_sla_names_can_be_callables(config):
    names = {"ack"}
    write(config / "rules.toml", '[[rule]]\nname = "x"\nthen = { ack_template = "late" }\n')
    with pytest.raises(ConfigError, match="unknown template 'late'"):
        Reloader(config, template_names=lambda: names)
    names.add("late")
    assert Reloader(config, template_names=lambda: names).ruleset.rules[0].then.ack_template == "late"
