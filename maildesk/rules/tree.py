"""The condition tree of a rule's ``when``: leaves (:class:`Cond`) and all/any/not groups.

:func:`compile_when` turns a ``when`` table into a tree, reporting every problem; groups
sort their children by cost (cheap tests first) and stop at the first decisive result.
``test(facts, trace, depth)`` records each node it evaluates in ``trace`` as
``(depth, node, matched, detail)`` so ``rules test`` can show why a rule matched or not.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from maildesk.rules.args import ArgError, Env
from maildesk.rules.conditions import REGISTRY, ConditionSpec
from maildesk.rules.facts import Facts

__all__ = ["ACTION_KEYS", "AllOf", "AnyOf", "Cond", "Not", "compile_when", "misplaced", "unknown"]

ACTION_KEYS = ("priority", "team", "assign", "tags", "ack_template", "ack", "status", "sla", "notify", "spam")


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
        return "all of:"

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
        return "any of:"

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
        return "not:"

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


def compile_when(value: object, env: Env, key: str, problem, nested: bool = False):
    """A ``when`` table -> a condition tree (all-of its keys), or None after reporting problems."""
    if not isinstance(value, dict):
        problem(key, f"expected a table of conditions, e.g. {{ subject_contains = \"outage\" }}, got {value!r}")
        return None
    if nested and not value:
        problem(key, "empty condition table")
        return None
    children, failed = [], False
    for name, arg in value.items():
        k = f"{key}.{name}"
        node = None
        if name in ("all", "any"):
            if not isinstance(arg, list) or not arg or not all(isinstance(t, dict) for t in arg):
                problem(k, f"expected a list of condition tables, e.g. {name} = [ {{ sender_domain = \"example.test\" }}, {{ ... }} ]")
            else:
                subs = [compile_when(t, env, f"{k}[{i}]", problem, True) for i, t in enumerate(arg)]
                if None not in subs:
                    subs.sort(key=lambda n: n.cost)
                    cls = AllOf if name == "all" else AnyOf
                    node = cls(tuple(subs), k, sum(n.cost for n in subs))
        elif name == "not":
            if not isinstance(arg, dict):
                problem(k, "expected one table of conditions (negated when all of them hold); for several use not = { any = [...] }")
            else:
                sub = compile_when(arg, env, k, problem, True)
                node = Not(sub, k) if sub is not None else None
        elif name in REGISTRY:
            spec = REGISTRY[name]
            try:
                node = Cond(spec, spec.parse(arg, env), arg, k)
            except ArgError as exc:
                problem(k, str(exc))
        else:
            problem(k, unknown(name, [*REGISTRY, "all", "any", "not"], "condition") + misplaced(name))
        failed |= node is None
        children.append(node)
    if failed:
        return None
    if len(children) == 1 and nested:
        return children[0]
    children.sort(key=lambda n: n.cost)
    return AllOf(tuple(children), key, sum(n.cost for n in children), implicit=not nested)


def unknown(name: str, known, what: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(sorted(known))}"
    return f"unknown {what} {name!r}{hint}"


def misplaced(name: str) -> str:
    if name in ACTION_KEYS:
        return f" ({name!r} is an action: put it under then = {{...}})"
    if name in REGISTRY:
        return f" ({name!r} is a condition: put it under when = {{...}})"
    return ""
