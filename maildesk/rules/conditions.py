"""The ``when`` side of a rule: a registry of pure predicates, one per condition name.

A predicate is ``fn(facts, arg) -> (matched, detail)``: ``facts`` is a :class:`Facts` (the
message plus what the engine knows about it, computed lazily and at most once per message),
``arg`` is the condition's value as compiled at load time (regexes are compiled once), and
``detail`` is the evidence shown by ``maildesk rules test`` ("outage", the sender's domain...).

Conditions register with ``@condition(name, parse=..., cost=..., text=...)``; ``cost`` orders
the tests inside one group so cheap ones (queue, sender) run before expensive ones (body
regexes, language detection); see tree.py for how they combine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from maildesk.rules.args import (
    Env,
    p_bool,
    p_charsets,
    p_domains,
    p_folded,
    p_globs,
    p_header,
    p_hours,
    p_lower,
    p_regex,
    p_words,
)
from maildesk.rules.facts import Facts
from maildesk.sla.businesshours import BusinessHours

__all__ = ["REGISTRY", "ConditionSpec", "condition"]


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
def business_hours(f: Facts, hours: BusinessHours) -> tuple[bool, str]:
    return hours.is_open(f.now), f.now.astimezone(hours.tz).strftime("%a %Y-%m-%d %H:%M %Z")


@condition("outside_business_hours", parse=p_hours, cost=10, text="arrived outside business hours {}")
def outside_business_hours(f: Facts, hours: BusinessHours) -> tuple[bool, str]:
    return not hours.is_open(f.now), f.now.astimezone(hours.tz).strftime("%a %Y-%m-%d %H:%M %Z")


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
