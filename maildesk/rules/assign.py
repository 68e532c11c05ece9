"""Who gets a ticket: a registry of assignment strategies, each a pure function.

``fn(team, directory, state, msg, now, tags) -> Assignment``. Every strategy considers only
agents who are on duty (``available = true`` and inside their ``working_hours`` if they have
any) and below their ``capacity`` (open tickets, from ``state.open_tickets``), and returns
``Assignment(None, reason)`` when nobody qualifies. ``team`` may be the pseudo-team
:data:`EVERYONE` (all agents) when a rule asks for a strategy without routing to a team.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from maildesk.parse.message import InboundMessage
from maildesk.policy.agents import Agent, Directory, Team

__all__ = ["EVERYONE", "REGISTRY", "AssignState", "Assignment", "candidates", "ineligible", "strategy"]

EVERYONE = "*"  # the pool name used when no team is set


@dataclass(frozen=True)
class AssignState:
    """What the daemon knows about current load: supplied by the caller, never fetched."""

    open_tickets: Mapping[str, int] = field(default_factory=dict)  # login -> open tickets
    last_assigned: Mapping[str, str] = field(default_factory=dict)  # team name (or "*") -> login


@dataclass(frozen=True)
class Assignment:
    login: str | None
    reason: str
    strategy: str = ""


Strategy = Callable[[Team, Directory, AssignState, InboundMessage, datetime, tuple[str, ...]], Assignment]
REGISTRY: dict[str, Strategy] = {}


def strategy(name: str):
    """Register an assignment strategy under ``name`` (usable as ``assign = "name"``)."""

    def register(fn: Strategy) -> Strategy:
        if name in REGISTRY or name in ("strategy", "none"):
            raise ValueError(f"strategy {name!r} is registered twice")

        def named(*args, **kwargs) -> Assignment:
            result = fn(*args, **kwargs)
            return Assignment(result.login, result.reason, name)

        named.__name__ = named.__qualname__ = fn.__name__
        named.__doc__ = fn.__doc__
        REGISTRY[name] = named
        return named

    return register


def ineligible(agent: Agent, state: AssignState, now: datetime) -> str | None:
    """Why ``agent`` cannot take a new ticket now, or None when they can."""
    if not agent.available:
        return "unavailable"
    if agent.working_hours is not None and not agent.working_hours.is_open(now):
        return "off duty"
    load = state.open_tickets.get(agent.login, 0)
    if agent.capacity is not None and load >= agent.capacity:
        return f"at capacity ({load}/{agent.capacity})"
    return None


def candidates(team: Team, directory: Directory, state: AssignState, now: datetime) -> tuple[list[Agent], list[str]]:
    """The team's eligible agents in member order, and a note for each one skipped."""
    members = directory.agents if team.name == EVERYONE else directory.members(team)
    ok, skipped = [], []
    for agent in members:
        why = ineligible(agent, state, now)
        if why:
            skipped.append(f"{agent.login} {why}")
        else:
            ok.append(agent)
    return ok, skipped


def _nobody(team: Team, skipped: list[str]) -> Assignment:
    detail = f": {', '.join(skipped)}" if skipped else " (it has no members)"
    return Assignment(None, f"nobody in {_pool(team)} can take it{detail}")


def _pool(team: Team) -> str:
    return "the whole desk" if team.name == EVERYONE else f"team {team.name}"


def _skipped(skipped: list[str]) -> str:
    return f"; skipped {', '.join(skipped)}" if skipped else ""


@strategy("round_robin")
def round_robin(team, directory, state, msg, now, tags=()) -> Assignment:
    """The next eligible member after the one who got the team's previous ticket."""
    members = list(directory.agents if team.name == EVERYONE else directory.members(team))
    if not members:
        return _nobody(team, [])
    logins = [a.login for a in members]
    last = state.last_assigned.get(team.name)
    start = logins.index(last) + 1 if last in logins else 0
    skipped = []
    for k in range(len(members)):
        agent = members[(start + k) % len(members)]
        why = ineligible(agent, state, now)
        if why is None:
            after = f" after {last}" if last in logins else ""
            return Assignment(agent.login, f"round robin in {_pool(team)}: next{after} is {agent.login}{_skipped(skipped)}")
        skipped.append(f"{agent.login} {why}")
    return _nobody(team, skipped)


def _least(agents: list[Agent], state: AssignState) -> Agent:
    return min(agents, key=lambda a: state.open_tickets.get(a.login, 0))  # min keeps member order on ties


@strategy("least_loaded")
def least_loaded(team, directory, state, msg, now, tags=()) -> Assignment:
    """The eligible member with the fewest open tickets (member order breaks ties)."""
    ok, skipped = candidates(team, directory, state, now)
    if not ok:
        return _nobody(team, skipped)
    agent = _least(ok, state)
    load = state.open_tickets.get(agent.login, 0)
    return Assignment(agent.login, f"least loaded in {_pool(team)}: {agent.login} has {load} open{_skipped(skipped)}")


@strategy("skills")
def skills(team, directory, state, msg, now, tags=()) -> Assignment:
    """The eligible member whose skills best match the message.

    A skill is wanted when it is one of the ticket's tags or appears as a word in the subject
    or body. Most matching skills wins, then fewest open tickets, then member order. When the
    message names no skill anyone has, this falls back to least_loaded.
    """
    ok, skipped = candidates(team, directory, state, now)
    if not ok:
        return _nobody(team, skipped)
    vocabulary = {s.lower() for a in ok for s in a.skills} | {s.lower() for s in team.skills}
    wanted = {t.lower() for t in tags} & vocabulary
    if vocabulary:
        words = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(s) for s in sorted(vocabulary, key=len, reverse=True)) + r")(?!\w)", re.I)
        wanted |= {w.lower() for w in words.findall(f"{msg.subject}\n{msg.text[:262144]}")}
    scored = [(len(wanted & {s.lower() for s in a.skills}), a) for a in ok]
    best = max((s for s, _ in scored), default=0)
    if best == 0:
        agent = _least(ok, state)
        why = f"wants {', '.join(sorted(wanted))}, which no eligible member has" if wanted else "names no known skill"
        return Assignment(agent.login, f"skills in {_pool(team)}: the message {why}; least loaded is {agent.login}{_skipped(skipped)}")
    agent = _least([a for s, a in scored if s == best], state)
    have = sorted(wanted & {s.lower() for s in agent.skills})
    return Assignment(agent.login, f"skills in {_pool(team)}: {agent.login} has {', '.join(have)} (wanted: {', '.join(sorted(wanted))})"
                      f"{_skipped(skipped)}")
