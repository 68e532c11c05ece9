"""Ordered rule evaluation: a message in, a :class:`Decision` out. Pure: no I/O, no clock.

Precedence when several rules match (docs/rules.md says the same):

* rules run top to bottom; a matching rule with ``stop = true`` ends the run;
* scalar actions (priority, team, assign, ack/ack_template, status, sla, spam): the LAST
  matching rule that sets one wins, like assignments in a script;
* ``tags`` and ``notify`` accumulate in order, without duplicates;
* assignment is resolved once, after the last rule, for the final team: ``assign`` names an
  agent (fixed), a strategy, ``"strategy"`` (the team's own) or ``"none"``; without any
  ``assign`` the team's own strategy applies (``none`` unless agents.toml says otherwise);
* ``spam = true`` means: kept, never acknowledged, not assigned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from maildesk.parse.message import InboundMessage
from maildesk.policy.agents import Directory, Team
from maildesk.rules import assign
from maildesk.rules.facts import Facts
from maildesk.rules.schema import RuleSet

__all__ = ["Decision", "Hit", "RuleContext", "evaluate"]

_SCALARS = ("priority", "team", "assign", "status", "sla", "spam")


@dataclass(frozen=True)
class RuleContext:
    """What the engine needs from outside, gathered by the caller before evaluating."""

    directory: Directory = field(default_factory=Directory)
    known_contact: bool = False  # the sender has written to us before
    open_tickets: Mapping[str, int] = field(default_factory=dict)  # login -> open tickets (least_loaded, capacity)
    last_assigned: Mapping[str, str] = field(default_factory=dict)  # team (or "*") -> login (round_robin)
    language: str | None = None  # set it when already known; otherwise detected on demand

    @property
    def assign_state(self) -> assign.AssignState:
        return assign.AssignState(self.open_tickets, self.last_assigned)


@dataclass(frozen=True)
class Hit:
    """One evaluated rule: did it match, and the conditions tested, in the order tested."""

    rule: str
    index: int
    matched: bool
    trace: tuple = field(repr=False)  # (depth, node, ok, detail)

    @property
    def reasons(self) -> tuple[str, ...]:
        out = []
        for depth, node, ok, detail in self.trace:
            shown = f" [{detail}]" if detail else ""
            out.append(f"{'  ' * depth}{'yes' if ok else 'no '}  {node.describe()}{shown}")
        if not self.trace:
            out.append("yes  (no conditions: matches every message)")
        return tuple(out)


@dataclass(frozen=True)
class Decision:
    priority: str | None = None  # None: no rule said; the pipeline's default applies
    team: str | None = None
    assignee: str | None = None
    assign_strategy: str | None = None  # "fixed" or a strategy name
    assign_reason: str = ""
    tags: tuple[str, ...] = ()
    ack_template: str | None = None  # None: the default acknowledgement template
    ack: bool = True
    status: str | None = None
    sla_policy: str | None = None
    notify: tuple[str, ...] = ()
    spam: bool = False
    hits: tuple[Hit, ...] = ()
    set_by: tuple[tuple[str, str], ...] = ()  # (action, rule name) for each scalar that a rule set
    round_robin: tuple[str, str] | None = None  # store as last_assigned[team] = login
    stopped_by: str | None = None
    is_reply: bool = False

    @property
    def matched(self) -> tuple[str, ...]:
        return tuple(h.rule for h in self.hits if h.matched)

    def source(self, action: str) -> str | None:
        """The rule that set ``action`` ("priority", "assign", "ack"...), if any."""
        return dict(self.set_by).get(action)


def evaluate(ruleset: RuleSet, msg: InboundMessage, ctx: RuleContext, now: datetime, is_reply: bool = False) -> Decision:
    """Run ``ruleset`` over ``msg`` as it arrived at ``now``; see the module docstring for precedence."""
    facts = Facts(msg, ctx, now)
    values: dict[str, object] = {}
    by: dict[str, str] = {}
    tags: dict[str, None] = {}
    notify: dict[str, None] = {}
    hits = []
    stopped = None
    want = "reply" if is_reply else "new"
    for rule in ruleset.rules:
        if not rule.enabled or (rule.on != "any" and rule.on != want):
            continue
        trace: list = []
        ok = rule.when.test(facts, trace, 0)
        hits.append(Hit(rule.name, rule.index, ok, tuple(trace)))
        if not ok:
            continue
        then = rule.then
        for name in _SCALARS:
            value = getattr(then, name)
            if value is not None:
                values[name], by[name] = value, rule.name
        if then.ack_template is not None:
            values["ack"], values["ack_template"], by["ack"] = True, then.ack_template, rule.name
        if then.ack is not None:
            values["ack"], by["ack"] = then.ack, rule.name
            if then.ack is False:
                values.pop("ack_template", None)
        tags.update(dict.fromkeys(then.tags))
        notify.update(dict.fromkeys(then.notify))
        if rule.stop:
            stopped = rule.name
            break
    spam = bool(values.get("spam", False))
    team = values.get("team")
    login, strategy, reason, rr = _assign(values.get("assign"), by.get("assign"), team, spam, ctx, msg, now, tuple(tags))
    if login is not None:
        by["assignee"] = by.get("assign") or f"team {team} default"
    return Decision(
        priority=values.get("priority"),
        team=team,
        assignee=login,
        assign_strategy=strategy,
        assign_reason=reason,
        tags=tuple(tags),
        ack_template=None if spam else values.get("ack_template"),
        ack=False if spam else bool(values.get("ack", True)),
        status=values.get("status"),
        sla_policy=values.get("sla"),
        notify=tuple(notify),
        spam=spam,
        hits=tuple(hits),
        set_by=tuple(by.items()),
        round_robin=rr,
        stopped_by=stopped,
        is_reply=is_reply,
    )


def _assign(spec, rule, team_name, spam, ctx: RuleContext, msg, now, tags):
    """-> (login, strategy, reason, round_robin update)"""
    directory = ctx.directory
    team = directory.team(team_name) if team_name else None
    if spam:
        return None, None, "spam is not assigned", None
    if spec == "none":
        return None, None, f"rule {rule!r} says assign = none", None
    if spec is None or spec == "strategy":
        if team is None:
            why = "no team was set" if spec else "no rule assigns and no team was set"
            return None, None, why, None
        if team.strategy == "none":
            return None, None, f"team {team.name} assigns nobody automatically (strategy = none)", None
        name = team.strategy
    elif spec in assign.REGISTRY:
        name = spec
    else:
        agent = directory.agent(spec)
        note = ""
        why = assign.ineligible(agent, ctx.assign_state, now) if agent else "unknown"
        if why:
            note = f" (note: {spec} is {why})"
        return spec, "fixed", f"rule {rule!r} assigns {spec}{note}", None
    pool = team or Team(assign.EVERYONE)
    result = assign.REGISTRY[name](pool, directory, ctx.assign_state, msg, now, tags)
    rr = (pool.name, result.login) if name == "round_robin" and result.login else None
    return result.login, name, result.reason, rr
