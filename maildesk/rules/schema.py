"""config/rules.toml -> a :class:`RuleSet` of :class:`Rule` dataclasses.

The file holds ordered ``[[rule]]`` tables (``name``, ``when``, ``then``, ``stop``, ``on``,
``enabled``, ``description``) and named ``[hours.NAME]`` tables. :func:`parse_rules` reports
every problem it finds, each a :class:`ConfigError` naming the file, the line (best effort),
the rule and the key, and what was expected; docs/rules.md is the reference.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maildesk.config.toml import TomlLocator, toml_error
from maildesk.errors import ConfigError
from maildesk.policy.agents import Directory, parse_hours
from maildesk.rules import assign
from maildesk.rules.args import ArgError, Env
from maildesk.rules.tree import ACTION_KEYS, compile_when, misplaced, unknown
from maildesk.sla.businesshours import BusinessHours
from maildesk.vocab import PRIORITIES, STATUSES

__all__ = ["ON", "Actions", "Rule", "RuleSet", "parse_rules"]

ON = ("new", "reply", "any")
_RULE_KEYS = ("name", "description", "enabled", "on", "when", "then", "stop")
_TAG = re.compile(r"[^\s,#\"']{1,64}")
_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")


@dataclass(frozen=True)
class Actions:
    """A rule's ``then``. None means "this rule does not say" (an earlier rule's value stands)."""

    priority: str | None = None
    team: str | None = None
    assign: str | None = None  # an agent login, a strategy name, "strategy" (the team's) or "none"
    tags: tuple[str, ...] = ()
    ack_template: str | None = None
    ack: bool | None = None
    status: str | None = None
    sla: str | None = None
    notify: tuple[str, ...] = ()  # addresses (agent logins are resolved at load)
    spam: bool | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    when: Any  # a condition tree (conditions.AllOf/AnyOf/Not/Cond)
    then: Actions
    stop: bool = False
    on: str = "new"
    enabled: bool = True
    description: str = ""
    line: int | None = None
    index: int = 0  # 1-based position in the file


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    hours: Mapping[str, BusinessHours] = field(default_factory=dict)
    path: str = ""

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def uses(self, condition: str) -> bool:
        """Whether an enabled rule tests ``condition`` (e.g. "language": load its model early)."""
        def walk(node) -> bool:
            spec = getattr(node, "spec", None)
            if spec is not None:
                return spec.name == condition
            kids = getattr(node, "children", None) or ([node.child] if hasattr(node, "child") else [])
            return any(walk(k) for k in kids)
        return any(r.enabled and r.when is not None and walk(r.when) for r in self.rules)

    def __len__(self) -> int:
        return len(self.rules)


def parse_rules(text: str, path: str, directory: Directory, template_names: set[str] | None = None,
                sla_names: set[str] | None = None, hours: Mapping[str, BusinessHours] | None = None,
                ) -> tuple[RuleSet, list[ConfigError]]:
    """Parse a rules file; returns the rules that are valid and every problem found.

    ``hours`` are named hours defined elsewhere (e.g. config/sla.toml's ``[hours.*]``) that
    ``business_hours`` may name too; the rules file's own ``[hours.NAME]`` win.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return RuleSet(path=path), [toml_error(path, exc)]
    where, problems = TomlLocator(text), []

    def top(key: str, hint: str, line: int | None = None) -> None:
        problems.append(ConfigError(path, key, hint, line or where.key_line(key) or where.header_line(key)))

    for key in data:
        if key not in ("rule", "hours"):
            top(key, "unknown key; expected [[rule]] tables and [hours.NAME] tables")
    own: dict[str, BusinessHours] = {}
    raw_hours = data.get("hours", {})
    if not isinstance(raw_hours, dict):
        top("hours", "expected [hours.NAME] tables")
        raw_hours = {}
    for name, table in raw_hours.items():
        span = where.block(f"hours.{name}", 0)

        def hours_problem(key, hint, name=name, span=span):
            line = (where.key_line(key, span) if span and key else None) or (span[0] if span else None)
            top(f"[hours.{name}] {key}".strip(), hint, line)

        parsed = parse_hours(table, hours_problem)
        if parsed is not None:
            own[name] = parsed
    rules_raw = data.get("rule", [])
    if not isinstance(rules_raw, list) or not all(isinstance(r, dict) for r in rules_raw):
        top("rule", "expected [[rule]] tables")
        rules_raw = []
    env = Env({**(hours or {}), **own}, directory)
    rules, names = [], set()
    for i, raw in enumerate(rules_raw):
        builder = _RuleBuilder(path, where, i, raw, env, problems)
        rule = builder.build(template_names, sla_names)
        if builder.name.strip() and builder.name in names:
            builder.problem("name", f"duplicate rule name {builder.name!r}; rule names must be unique")
            rule = None
        names.add(builder.name)
        if rule is not None:
            rules.append(rule)
    return RuleSet(tuple(rules), own, path), problems


class _RuleBuilder:
    def __init__(self, path, where: TomlLocator, index: int, raw: dict, env: Env, problems: list):
        self.path, self.where, self.index, self.raw, self.env, self.problems = path, where, index, raw, env, problems
        self.span = where.block("rule", index)
        self.name = raw.get("name") if isinstance(raw.get("name"), str) else ""
        self.name_line = (where.key_line("name", self.span) if self.span else None) or (self.span[0] if self.span else None)
        self.count = 0

    def problem(self, key: str, hint: str) -> None:
        self.count += 1
        last = next((k for k in reversed(re.split(r"[.\[\]]+", key)) if k and not k.isdigit()), "")
        line = (self.where.key_line(last, self.span) if last and self.span else None) or self.name_line
        label = f' "{self.name}"' if self.name else ""
        self.problems.append(ConfigError(self.path, f"[[rule]] #{self.index + 1}{label} {key}".rstrip(), hint, line))

    def build(self, template_names, sla_names) -> Rule | None:
        raw = self.raw
        for key in raw:
            if key not in _RULE_KEYS:
                self.problem(key, unknown(key, _RULE_KEYS, "rule key") + misplaced(key))
        if not self.name.strip():
            self.problem("name", "required: a unique name for the rule, e.g. name = \"vip-outage\"")
        on = raw.get("on", "new")
        if on not in ON:
            self.problem("on", f"expected one of {', '.join(ON)}, got {on!r}")
        for key in ("enabled", "stop"):
            if not isinstance(raw.get(key, False), bool):
                self.problem(key, f"expected true or false, got {raw[key]!r}")
        if not isinstance(raw.get("description", ""), str):
            self.problem("description", "expected a string")
        when = compile_when(raw.get("when", {}), self.env, "when", self.problem)
        then = self._actions(raw.get("then", {}), template_names, sla_names)
        if not raw.get("then") and not raw.get("stop", False) and isinstance(raw.get("then", {}), dict):
            self.problem("then", "the rule does nothing: give it actions, e.g. then = { tags = [\"x\"] }, or stop = true")
        if self.count:
            return None
        return Rule(self.name, when, then, raw.get("stop", False), on, raw.get("enabled", True), raw.get("description", ""),
                    self.name_line, self.index + 1)

    def _actions(self, table: object, template_names, sla_names) -> Actions:
        if not isinstance(table, dict):
            self.problem("then", f"expected a table of actions, e.g. then = {{ priority = \"high\" }}, got {table!r}")
            return Actions()
        out: dict[str, Any] = {}
        for key, value in table.items():
            k = f"then.{key}"
            if key not in ACTION_KEYS:
                self.problem(k, unknown(key, ACTION_KEYS, "action") + misplaced(key))
                continue
            check = getattr(self, f"_a_{key}")
            try:
                out[key] = check(value, template_names, sla_names)
            except ArgError as exc:
                self.problem(k, str(exc))
        if out.get("ack") is False and out.get("ack_template"):
            self.problem("then.ack", "ack = false and ack_template contradict each other; keep one")
        return Actions(**out)

    def _choice(self, value, choices, what):
        if value not in choices:
            raise ArgError(f"expected {what} ({', '.join(choices)}), got {value!r}")
        return value

    def _a_priority(self, value, *_):
        return self._choice(value, PRIORITIES, "a priority")

    def _a_status(self, value, *_):
        return self._choice(value, STATUSES, "a status")

    def _a_team(self, value, *_):
        teams = [t.name for t in self.env.directory.teams]
        return self._choice(value, teams or ["none defined in agents.toml"], "a team from agents.toml")

    def _a_assign(self, value, *_):
        logins = [a.login for a in self.env.directory.agents]
        if value in ("strategy", "none") or value in assign.REGISTRY or value in logins:
            return value
        choices = ", ".join(["strategy", "none", *sorted(assign.REGISTRY), *logins])
        raise ArgError(f"expected an agent login or a strategy ({choices}), got {value!r}")

    def _a_tags(self, value, *_):
        tags = [value] if isinstance(value, str) else value
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and _TAG.fullmatch(t) for t in tags):
            raise ArgError(f"expected a tag or a list of tags without spaces, commas or '#', got {value!r}")
        return tuple(tags)

    def _a_ack(self, value, *_):
        if not isinstance(value, bool):
            raise ArgError(f"expected true or false, got {value!r}")
        return value

    _a_spam = _a_ack

    def _a_ack_template(self, value, template_names, _):
        return self._name(value, template_names, "template", "templates found")

    def _a_sla(self, value, _, sla_names):
        return self._name(value, sla_names, "SLA policy", "SLA policies")

    def _name(self, value, known, what, plural):
        if not isinstance(value, str) or not value:
            raise ArgError(f"expected the name of a {what}, got {value!r}")
        if known is not None and value not in known:
            raise ArgError(f"unknown {what} {value!r}; {plural}: {', '.join(sorted(known)) or 'none'}")
        return value

    def _a_notify(self, value, *_):
        entries = [value] if isinstance(value, str) else value
        if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
            raise ArgError(f"expected an address, an agent login or a list of them, got {value!r}")
        out = []
        for e in entries:
            agent = self.env.directory.agent(e)
            if agent is not None:
                out.append(agent.address)
            elif _ADDRESS.fullmatch(e):
                out.append(e.lower())
            else:
                raise ArgError(f"{e!r} is neither a mail address nor an agent login")
        return tuple(out)
