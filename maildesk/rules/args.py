"""Condition arguments: a TOML value -> the compiled argument, or :class:`ArgError` saying what was expected.

Everything costly (regexes, word lists, shell patterns) is compiled here, once, at load.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from maildesk.policy.agents import Directory
from maildesk.rules.facts import normalize_charset
from maildesk.sla.businesshours import BusinessHours

__all__ = [
    "ArgError",
    "Env",
    "p_bool",
    "p_charsets",
    "p_domains",
    "p_folded",
    "p_globs",
    "p_header",
    "p_hours",
    "p_lower",
    "p_regex",
    "p_words",
]


class ArgError(ValueError):
    """A condition's value is not what the condition expects; the text says what is."""


@dataclass(frozen=True)
class Env:
    """What compiling a condition may look up: named hours and the directory (team hours)."""

    hours: Mapping[str, BusinessHours]
    directory: Directory


def _strings(value: object, what: str = "a string or a list of strings") -> tuple[str, ...]:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ArgError(f"expected {what}, got {value!r}")


def p_bool(value: object, env: Env) -> bool:
    if not isinstance(value, bool):
        raise ArgError(f"expected true or false, got {value!r}")
    return value


def p_folded(value: object, env: Env) -> tuple[str, ...]:
    return tuple(v.casefold() for v in _strings(value))


def p_globs(value: object, env: Env) -> re.Pattern:
    """Shell-style patterns ("*@example.test", "image/*"), any of them, case-insensitive."""
    return re.compile("|".join(f"(?:{fnmatch.translate(v.lower())})" for v in _strings(value)), re.I)


def p_domains(value: object, env: Env) -> frozenset[str]:
    domains = [v.lower().lstrip("@").strip(".") for v in _strings(value, "a domain or a list of domains")]
    for d in domains:
        if "@" in d or not re.fullmatch(r"[a-z0-9.-]+", d):
            raise ArgError(f"{d!r} is not a domain name such as \"example.test\"")
    return frozenset(domains)


def p_regex(value: object, env: Env) -> re.Pattern:
    patterns = _strings(value, "a regular expression or a list of them")
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:
            raise ArgError(f"invalid regular expression {p!r}: {exc.msg} at position {exc.pos}") from exc
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


def p_words(value: object, env: Env) -> re.Pattern:
    words = _strings(value, "a word or a list of words")
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.I)


def p_lower(value: object, env: Env) -> frozenset[str]:
    return frozenset(v.lower() for v in _strings(value))


def p_charsets(value: object, env: Env) -> frozenset[str]:
    return frozenset(normalize_charset(v) for v in _strings(value, "a charset name or a list of them"))


def p_hours(value: object, env: Env) -> BusinessHours:
    if not isinstance(value, str):
        raise ArgError(f"expected the name of an [hours.NAME] table or \"team:NAME\", got {value!r}")
    if value.startswith("team:"):
        team = env.directory.team(value[5:])
        if team is None:
            raise ArgError(f"unknown team {value[5:]!r} (teams are declared in agents.toml)")
        if team.hours is None:
            raise ArgError(f"team {team.name!r} has no hours = {{...}} in agents.toml")
        return team.hours
    if value not in env.hours:
        known = ", ".join(sorted(env.hours)) or "none are defined"
        raise ArgError(f"unknown hours {value!r}; define [hours.{value}] in this file ({known}) or use \"team:NAME\"")
    return env.hours[value]


_HEADER_TESTS = ("exists", "equals", "contains", "matches")


def p_header(value: object, env: Env) -> tuple[tuple[str, str, Any], ...]:
    tables = value if isinstance(value, list) else [value]
    out = []
    for t in tables:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise ArgError(f"expected {{ name = \"X-Header\", exists|equals|contains|matches = ... }}, got {value!r}")
        tests = [k for k in t if k != "name"]
        if len(tests) != 1 or tests[0] not in _HEADER_TESTS:
            raise ArgError(f"header {t['name']!r}: expected exactly one of {', '.join(_HEADER_TESTS)} beside name")
        kind, arg = tests[0], t[tests[0]]
        if kind == "exists":
            arg = p_bool(arg, env)
        elif kind == "matches":
            arg = p_regex(arg, env)
        elif not isinstance(arg, str):
            raise ArgError(f"header {t['name']!r}: {kind} expects a string, got {arg!r}")
        else:
            arg = arg.casefold().strip()
        out.append((t["name"].lower(), kind, arg))
    return tuple(out)
