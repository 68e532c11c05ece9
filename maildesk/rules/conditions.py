"""The ``when`` side of a rule: a registry of pure predicates and the tree that combines them.

A predicate is ``fn(facts, arg) -> (matched, detail)``: ``facts`` is a :class:`Facts` (the
message plus what the engine knows about it, computed lazily and at most once per message),
``arg`` is the condition's value as compiled at load time (regexes are compiled once), and
``detail`` is the evidence shown by ``maildesk rules test`` ("outage", the sender's domain...).

Conditions register with ``@condition(name, parse=..., cost=..., text=...)``; ``cost`` orders
the tests inside one group so cheap ones (queue, sender) run before expensive ones (body
regexes, language detection), and a group stops at the first decisive result.
"""

from __future__ import annotations

import codecs
import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from maildesk.directory import Directory, Hours
from maildesk.message import InboundMessage
from maildesk.rules.language import detect_language

__all__ = [
    "BODY_LIMIT",
    "REGISTRY",
    "AllOf",
    "AnyOf",
    "ArgError",
    "Cond",
    "ConditionSpec",
    "Env",
    "Facts",
    "Not",
    "condition",
    "normalize_charset",
]

BODY_LIMIT = 256 * 1024  # body conditions look at the first 256 KiB of text


class ArgError(ValueError):
    """A condition's value is not what the condition expects; the text says what is."""


@dataclass(frozen=True)
class Env:
    """What compiling a condition may look up: named hours and the directory (team hours)."""

    hours: Mapping[str, Hours]
    directory: Directory


@dataclass(frozen=True)
class ConditionSpec:
    name: str
    fn: Callable[[Facts, Any], tuple[bool, str]]
    parse: Callable[[object, Env], Any]
    cost: int
    text: str  # "subject contains {}": how `rules test` describes it


REGISTRY: dict[str, ConditionSpec] = {}


def condition(name: str, *, parse: Callable[[object, Env], Any], cost: int, text: str):
    """Register a predicate under ``name`` (the key used in ``when``)."""

    def register(fn):
        if name in REGISTRY or name in ("all", "any", "not"):
            raise ValueError(f"condition {name!r} is registered twice")
        REGISTRY[name] = ConditionSpec(name, fn, parse, cost, text)
        return fn

    return register


class Facts:
    """One message as the conditions see it; every derived value is computed on first use."""

    def __init__(self, msg: InboundMessage, ctx: Any, now: datetime):
        self.msg, self.ctx, self.now = msg, ctx, now

    @cached_property
    def sender(self) -> str:
        return (self.msg.from_addr or self.msg.mail_from).lower()

    @cached_property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]

    @cached_property
    def recipients(self) -> tuple[str, ...]:
        """Envelope, To and Cc; ``support+x@d`` also counts as ``support@d``."""
        out = dict.fromkeys(self.msg.recipients)
        for addr in self.msg.recipients:
            local, _, domain = addr.partition("@")
            if "+" in local:
                out.setdefault(f"{local.partition('+')[0]}@{domain}", None)
        return tuple(out)

    @cached_property
    def subject_folded(self) -> str:
        return self.msg.subject.casefold()

    @cached_property
    def body(self) -> str:
        return self.msg.text[:BODY_LIMIT]

    @cached_property
    def body_folded(self) -> str:
        return self.body.casefold()

    @cached_property
    def language(self) -> str | None:
        known = getattr(self.ctx, "language", None)
        return known or detect_language(self.msg.subject, self.msg.text, self.msg.header("content-language"))

    @cached_property
    def charsets(self) -> tuple[str, ...]:
        return tuple(normalize_charset(c) for c in self.msg.charsets)


@dataclass(frozen=True, slots=True)
class Cond:
    spec: ConditionSpec
    arg: Any
    raw: object
    key: str  # where it is written: "when.any[2].subject_contains"

    @property
    def cost(self) -> int:
        return self.spec.cost

    def describe(self) -> str:
        return self.spec.text.format(_show(self.raw))

    def test(self, facts: Facts, trace: list, depth: int) -> bool:
        ok, detail = self.spec.fn(facts, self.arg)
        trace.append((depth, self, ok, detail))
        return ok


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple
    key: str
    cost: int = 0
    implicit: bool = False  # the `when` table itself: no "all of" line in the trace

    def describe(self) -> str:
        return "all of"

    def test(self, facts: Facts, trace: list, depth: int) -> bool:
        if not self.implicit:
            at = len(trace)
            trace.append(None)
        inner = depth if self.implicit else depth + 1
        ok = True
        for child in self.children:
            if not child.test(facts, trace, inner):
                ok = False
                break
        if not self.implicit:
            trace[at] = (depth, self, ok, "")
        return ok


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple
    key: str
    cost: int = 0

    def describe(self) -> str:
        return "any of"

    def test(self, facts: Facts, trace: list, depth: int) -> bool:
        at = len(trace)
        trace.append(None)
        ok = False
        for child in self.children:
            if child.test(facts, trace, depth + 1):
                ok = True
                break
        trace[at] = (depth, self, ok, "")
        return ok


@dataclass(frozen=True, slots=True)
class Not:
    child: Any
    key: str

    @property
    def cost(self) -> int:
        return self.child.cost

    def describe(self) -> str:
        return "none of"

    def test(self, facts: Facts, trace: list, depth: int) -> bool:
        at = len(trace)
        trace.append(None)
        ok = not self.child.test(facts, trace, depth + 1)
        trace[at] = (depth, self, ok, "")
        return ok


def _show(value: object) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def normalize_charset(name: str) -> str:
    """``cp1251`` and ``windows-1251`` are one charset: compare Python's canonical codec names."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name.lower()


# --- argument parsers: TOML value -> compiled argument, or ArgError saying what was expected

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


def p_hours(value: object, env: Env) -> Hours:
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


# --- the predicates

def _any_glob(values, pattern: re.Pattern) -> tuple[bool, str]:
    for v in values:
        if pattern.fullmatch(v):
            return True, v
    return False, ", ".join(values) or "none"


@condition("queue", parse=p_lower, cost=1, text="came through queue {}")
def queue(f: Facts, names: frozenset[str]) -> tuple[bool, str]:
    q = (f.msg.queue or "").lower()
    return q in names, q or "no queue"


@condition("source", parse=p_globs, cost=1, text="came in via {}")
def source(f: Facts, pattern: re.Pattern) -> tuple[bool, str]:
    return bool(pattern.fullmatch(f.msg.source)), f.msg.source or "unknown source"


@condition("known_contact", parse=p_bool, cost=1, text="sender is a known contact: {}")
def known_contact(f: Facts, want: bool) -> tuple[bool, str]:
    known = bool(getattr(f.ctx, "known_contact", False))
    return known is want, "known" if known else "first contact"


@condition("has_attachments", parse=p_bool, cost=1, text="has attachments: {}")
def has_attachments(f: Facts, want: bool) -> tuple[bool, str]:
    n = len(f.msg.attachments)
    return (n > 0) is want, f"{n} attachment(s)"


@condition("sender", parse=p_globs, cost=2, text="sender is {}")
def sender(f: Facts, pattern: re.Pattern) -> tuple[bool, str]:
    return bool(pattern.fullmatch(f.sender)), f.sender or "no sender"


@condition("sender_domain", parse=p_domains, cost=2, text="sender domain is {} (or a subdomain)")
def sender_domain(f: Facts, domains: frozenset[str]) -> tuple[bool, str]:
    d = f.sender_domain
    while d:
        if d in domains:
            return True, f.sender_domain
        d = d.partition(".")[2]
    return False, f.sender_domain or "no sender"


@condition("vip", parse=p_bool, cost=2, text="sender is a VIP: {}")
def vip(f: Facts, want: bool) -> tuple[bool, str]:
    is_vip = bool(f.sender) and f.ctx.directory.is_vip(f.sender)
    return is_vip is want, f"{f.sender} is {'' if is_vip else 'not '}on the vip list"


@condition("from_agent", parse=p_bool, cost=2, text="sender is one of our agents: {}")
def from_agent(f: Facts, want: bool) -> tuple[bool, str]:
    agent = f.ctx.directory.agent_by_address(f.sender) if f.sender else None
    return (agent is not None) is want, agent.login if agent else f"{f.sender} is no agent"


@condition("charset", parse=p_charsets, cost=2, text="written in charset {}")
def charset(f: Facts, names: frozenset[str]) -> tuple[bool, str]:
    for c in f.charsets:
        if c in names:
            return True, c
    return False, ", ".join(f.charsets) or "no charset declared"


@condition("recipient", parse=p_globs, cost=3, text="sent to {}")
def recipient(f: Facts, pattern: re.Pattern) -> tuple[bool, str]:
    return _any_glob(f.recipients, pattern)


@condition("header", parse=p_header, cost=4, text="header {}")
def header(f: Facts, tests: tuple) -> tuple[bool, str]:
    shown = []
    for name, kind, arg in tests:
        values = f.msg.headers.get(name, ())
        if kind == "exists":
            ok, hit = bool(values) is arg, (values[0] if values else "absent")
        elif kind == "matches":
            hit = next((v for v in values if arg.search(v)), None)
            ok = hit is not None
        else:
            fold = [(v, v.casefold().strip()) for v in values]
            hit = next((v for v, c in fold if (c == arg if kind == "equals" else arg in c)), None)
            ok = hit is not None
        shown.append(f"{name}: {hit if ok else (values[0] if values else 'absent')}")
        if not ok:
            return False, shown[-1]
    return True, "; ".join(shown)


@condition("subject_contains", parse=p_folded, cost=5, text="subject contains {}")
def subject_contains(f: Facts, needles: tuple[str, ...]) -> tuple[bool, str]:
    hay = f.subject_folded
    return next(((True, n) for n in needles if n in hay), (False, ""))


@condition("subject_words", parse=p_words, cost=6, text="subject has any of the words {}")
def subject_words(f: Facts, pattern: re.Pattern) -> tuple[bool, str]:
    m = pattern.search(f.msg.subject)
    return (True, m.group(0)) if m else (False, "")


@condition("subject_matches", parse=p_regex, cost=8, text="subject matches {}")
def subject_matches(f: Facts, pattern: re.Pattern) -> tuple[bool, str]:
    m = pattern.search(f.msg.subject)
    return (True, m.group(0)[:80]) if m else (False, "")


@condition("attachment_type", parse=p_globs, cost=5, text="has an attachment of type {}")
def attachment_type(f: Facts, pattern: re.Pattern) -> tuple[bool, str]:
    return _any_glob([a.content_type.lower() for a in f.msg.attachments], pattern)


@condition("attachment_name", parse=p_globs, cost=5, text="has an attachment named {}")
def attachment_name(f: Facts, pattern: re.Pattern) -> tuple[bool, str]:
    return _any_glob([a.filename for a in f.msg.attachments], pattern)


@condition("business_hours", parse=p_hours, cost=10, text="arrived inside business hours {}")
def business_hours(f: Facts, hours: Hours) -> tuple[bool, str]:
    return hours.contains(f.now), hours.local(f.now).strftime("%a %Y-%m-%d %H:%M %Z")


@condition("outside_business_hours", parse=p_hours, cost=10, text="arrived outside business hours {}")
def outside_business_hours(f: Facts, hours: Hours) -> tuple[bool, str]:
    return not hours.contains(f.now), hours.local(f.now).strftime("%a %Y-%m-%d %H:%M %Z")


@condition("body_contains", parse=p_folded, cost=20, text="body contains {}")
def body_contains(f: Facts, needles: tuple[str, ...]) -> tuple[bool, str]:
    hay = f.body_folded
    return next(((True, n) for n in needles if n in hay), (False, ""))


@condition("body_words", parse=p_words, cost=30, text="body has any of the words {}")
def body_words(f: Facts, pattern: re.Pattern) -> tuple[bool, str]:
    m = pattern.search(f.body)
    return (True, m.group(0)) if m else (False, "")


@condition("body_matches", parse=p_regex, cost=40, text="body matches {}")
def body_matches(f: Facts, pattern: re.Pattern) -> tuple[bool, str]:
    m = pattern.search(f.body)
    return (True, m.group(0)[:80]) if m else (False, "")


@condition("language", parse=p_lower, cost=100, text="written in language {}")
def language(f: Facts, codes: frozenset[str]) -> tuple[bool, str]:
    lang = f.language
    if lang is None:
        return False, "language could not be told"
    return lang in codes or lang.split("-")[0] in codes, lang
