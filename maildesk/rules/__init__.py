"""Routing rules: config/rules.toml -> :class:`RuleSet`; a message -> :class:`Decision`.

::

    schema.py      TOML -> Rule dataclasses, every problem as a ConfigError
    tree.py        a rule's ``when`` as a tree of conditions and all/any/not groups
    conditions.py  @condition registry of pure predicates
    args.py        condition arguments compiled once at load (regexes, word lists)
    facts.py       one message as the conditions see it, derived values computed once
    language.py    the language a message is written in (the ``language`` condition)
    assign.py      @strategy registry: round_robin, least_loaded, skills
    engine.py      evaluate(): ordered, pure, records why each rule matched or not
    report.py      text and JSON for `maildesk rules check` / `maildesk rules test`
    reload.py      re-read changed files, keep the last good rules on error

docs/rules.md is the reference for the file format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from maildesk.errors import ConfigError
from maildesk.policy.agents import Directory
from maildesk.rules.engine import Decision, Hit, RuleContext, evaluate
from maildesk.rules.schema import Actions, Rule, RuleSet, parse_rules
from maildesk.sla.businesshours import BusinessHours

__all__ = [
    "Actions",
    "Decision",
    "Hit",
    "Rule",
    "RuleContext",
    "RuleSet",
    "check_rules",
    "evaluate",
    "load_rules",
    "read_rules",
]


def load_rules(path: Path, directory: Directory, template_names: set[str] | None = None,
               sla_names: set[str] | None = None, hours: Mapping[str, BusinessHours] | None = None) -> RuleSet:
    """Load a rules file; raises the first :class:`ConfigError` (see :func:`check_rules` for all)."""
    ruleset, problems = read_rules(Path(path), directory, template_names, sla_names, hours)
    if problems:
        raise problems[0]
    return ruleset


def check_rules(path: Path, directory: Directory, template_names: set[str] | None = None,
                sla_names: set[str] | None = None, hours: Mapping[str, BusinessHours] | None = None) -> list[ConfigError]:
    """Every problem in a rules file, in file order. Names not given (None) are not checked."""
    return read_rules(Path(path), directory, template_names, sla_names, hours)[1]


def read_rules(path: Path, directory: Directory, template_names: set[str] | None = None,
               sla_names: set[str] | None = None, hours: Mapping[str, BusinessHours] | None = None,
               ) -> tuple[RuleSet, list[ConfigError]]:
    """The valid rules and every problem (sorted by line): what load_rules and check_rules share."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return RuleSet(path=str(path)), [ConfigError(str(path), "", f"cannot read the rules file ({exc.strerror}); see docs/rules.md")]
    except UnicodeDecodeError as exc:
        return RuleSet(path=str(path)), [ConfigError(str(path), "", f"expected UTF-8 text: {exc}")]
    ruleset, problems = parse_rules(text, str(path), directory, template_names, sla_names, hours)
    problems.sort(key=lambda p: p.line or 0)
    return ruleset, problems
