"""What ``config/sla.toml`` holds and how it is read: policies, escalation steps, selection.

The format is in docs/sla.md. :func:`load_sla` raises the first :class:`ConfigError` in file
order; :func:`check_sla` lists every problem, each with its line number where known. The
math over these policies is in :mod:`maildesk.sla.deadlines`, which re-exports everything here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from maildesk.config.toml import TomlLocator, decode_error_line
from maildesk.errors import ConfigError
from maildesk.sla.businesshours import BusinessHours, hours_from_table, parse_duration
from maildesk.vocab import PRIORITIES

__all__ = ["TARGETS", "EscalationStep", "SlaConfig", "SlaPolicy", "check_sla", "load_sla"]

TARGETS = ("first_response", "next_response", "resolution")
_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+")


@dataclass(frozen=True)
class EscalationStep:
    """One step of a policy's chain; exactly one of notify / raise_priority / reassign_team is set."""

    index: int  # position in the policy's chain: record it to run the step once
    targets: tuple[str, ...]
    after: timedelta  # business time after the breach (0 = at the breach)
    notify: str | None = None  # "team_lead" | "assignee" | a mail address
    raise_priority: bool = False
    reassign_team: str | None = None

    @property
    def action(self) -> str:
        return "notify" if self.notify else "raise_priority" if self.raise_priority else "reassign_team"


@dataclass(frozen=True)
class SlaPolicy:
    name: str
    hours: BusinessHours
    targets: dict[str, dict[str, timedelta]] = field(default_factory=dict)  # target -> priority -> goal
    warn_at: float = 0.75
    pause_when_pending: bool = True
    escalation: tuple[EscalationStep, ...] = ()

    def goal(self, target: str, priority: str) -> timedelta | None:
        return self.targets.get(target, {}).get(priority)


@dataclass(frozen=True)
class SlaConfig:
    """Policies by name and how a ticket finds its policy (see :meth:`policy_for`)."""

    policies: dict[str, SlaPolicy]
    default: str
    teams: dict[str, str] = field(default_factory=dict)  # team -> policy name
    priorities: dict[str, str] = field(default_factory=dict)  # priority -> policy name
    path: Path | None = None

    def policy_for(self, priority: str | None = None, team: str | None = None, policy_name: str | None = None) -> SlaPolicy:
        """Precedence: ``policy_name`` (set by a rule or stored on the ticket) > the team's
        policy > the priority's policy > the default. A name no longer in the file falls
        through to the next choice, so a config change never stops the scheduler."""
        for name in (policy_name, self.teams.get(team or ""), self.priorities.get(priority or "")):
            if name in self.policies:
                return self.policies[name]
        return self.policies[self.default]


class _Loader:
    """Builds an SlaConfig, collecting every problem as a ConfigError with a line number."""

    def __init__(self, path: Path, text: str):
        self.file, self.where, self.errors = str(path), TomlLocator(text), []

    def error(self, path: tuple[str, ...], key: str | None, hint: str, nth: int | None = None) -> None:
        shown = ".".join(path) + (f" #{nth + 1}" if nth is not None else "")
        where = f"[{shown}] {key}" if shown and key else f"[{shown}]" if shown else key or ""
        self.errors.append(ConfigError(self.file, where, hint, self.where.path_line(path, key, nth or 0)))

    def table(self, value, path, allowed: Collection[str] | None, nth=None) -> dict:
        if not isinstance(value, dict):
            self.error(path, None, "expected a table", nth)
            return {}
        for key in value:
            if allowed is not None and key not in allowed:
                self.error(path, key, f"unknown key; expected one of {', '.join(sorted(allowed))}", nth)
        return value

    def hours(self, name: str, raw) -> BusinessHours | None:
        hours, problems = hours_from_table(self.table(raw, ("hours", name), None))
        for key, hint in problems:
            self.error(("hours", name), key, hint)
        return hours

    def policy(self, name: str, raw, hours: dict[str, BusinessHours]) -> SlaPolicy | None:
        path = ("policy", name)
        t = self.table(raw, path, {"hours", "warn_at", "pause_when_pending", "escalation", *TARGETS})
        hname = t.get("hours")
        if hname not in hours:
            have = ", ".join(sorted(hours)) or "none defined"
            self.error(path, "hours", f"expected the name of an [hours.NAME] table ({have}), got {hname!r}")
            return None
        h = hours[hname]
        warn_at, pause = t.get("warn_at", 0.75), t.get("pause_when_pending", True)
        if isinstance(warn_at, bool) or not isinstance(warn_at, int | float) or not 0 < warn_at < 1:
            self.error(path, "warn_at", f"expected a share between 0 and 1 like 0.75, got {warn_at!r}")
        if not isinstance(pause, bool):
            self.error(path, "pause_when_pending", f"expected true or false, got {pause!r}")
        targets: dict[str, dict[str, timedelta]] = {}
        for target in TARGETS:
            if target in t:
                goals = self.table(t[target], (*path, target), PRIORITIES)
                targets[target] = {p: d for p, v in goals.items() if p in PRIORITIES
                                   and (d := self.duration(v, h, (*path, target), p, positive=True)) is not None}
        if not targets:
            self.error(path, None, f"define at least one target table: {', '.join(TARGETS)}")
        raw_steps = t.get("escalation", [])
        if not isinstance(raw_steps, list):
            self.error(path, "escalation", "expected [[policy.NAME.escalation]] tables")
            raw_steps = []
        steps = tuple(s for i, r in enumerate(raw_steps) if (s := self.step(i, r, h, (*path, "escalation"), targets)))
        return SlaPolicy(name, h, targets, float(warn_at) if isinstance(warn_at, int | float) else 0.75,
                      pause is not False, steps)

    def step(self, i: int, raw, h: BusinessHours, path, targets) -> EscalationStep | None:
        t = self.table(raw, path, {"target", "after", "notify", "raise_priority", "reassign_team"}, i)
        actions = [k for k in ("notify", "raise_priority", "reassign_team") if k in t]
        if len(actions) != 1:
            self.error(path, None, "expected exactly one of notify, raise_priority, reassign_team", i)
            return None
        which = t.get("target", list(TARGETS))
        which = [which] if isinstance(which, str) else which
        if not isinstance(which, list) or not which or any(w not in TARGETS for w in which):
            self.error(path, "target", f"expected one of {', '.join(TARGETS)} or a list of them, got {t.get('target')!r}", i)
            return None
        missing = [w for w in which if w not in targets and "target" in t]
        if missing:
            self.error(path, "target", f"this policy sets no {missing[0]} targets", i)
        after = self.duration(t.get("after", 0), h, path, "after", nth=i)
        notify, bump, team = t.get("notify"), t.get("raise_priority", False), t.get("reassign_team")
        if "notify" in t and not (notify in ("team_lead", "assignee") or (isinstance(notify, str) and _ADDRESS.fullmatch(notify))):
            self.error(path, "notify", f"expected \"team_lead\", \"assignee\" or a mail address, got {notify!r}", i)
        elif "raise_priority" in t and bump is not True:
            self.error(path, "raise_priority", f"expected true, got {bump!r}", i)
        elif "reassign_team" in t and not (isinstance(team, str) and team.strip()):
            self.error(path, "reassign_team", f"expected a team name like \"tier2\", got {team!r}", i)
        elif after is not None:
            return EscalationStep(i, tuple(which), after, notify, bump is True, team)
        return None

    def duration(self, value, h: BusinessHours, path, key, *, positive=False, nth=None) -> timedelta | None:
        try:
            d = parse_duration(value, allow_days=h.always_open)
        except ValueError as exc:
            self.error(path, key, str(exc), nth)
            return None
        if positive and not d:
            self.error(path, key, "expected a duration above zero", nth)
            return None
        return d

    def config(self, data: dict, path: Path) -> SlaConfig | None:
        self.table(data, (), {"select", "hours", "policy"})
        # A broken [hours.X] is reported once; its policies are still checked against a stand-in.
        hours = {n: self.hours(n, t) or BusinessHours(always_open=isinstance(t, dict) and t.get("always_open") is True,
                                                      week=(((0, 60),),) * 7)
                 for n, t in self.table(data.get("hours", {}), ("hours",), None).items()}
        raw = self.table(data.get("policy", {}), ("policy",), None)
        policies = {n: p for n, t in raw.items() if (p := self.policy(n, t, hours))}
        sel = self.table(data.get("select", {}), ("select",), {"default", "teams", "priorities"})
        default = sel.get("default", next(iter(raw)) if len(raw) == 1 else None)
        if not raw:
            self.error((), None, "no policies; add a [policy.NAME] table")
        elif default is None:
            self.error(("select",), "default", f"required when there are several policies; expected one of {', '.join(raw)}")
        elif default not in raw:
            self.error(("select",), "default", f"expected the name of a [policy.NAME] table ({', '.join(raw)}), got {default!r}")
        maps = {}
        for key, allowed in (("teams", None), ("priorities", PRIORITIES)):
            maps[key] = self.table(sel.get(key, {}), ("select", key), allowed)
            for k, v in maps[key].items():
                if v not in raw:
                    self.error(("select", key), k, f"expected the name of a [policy.NAME] table ({', '.join(raw)}), got {v!r}")
        if self.errors:
            return None
        return SlaConfig(policies, default, dict(maps["teams"]), dict(maps["priorities"]), path)


def _parse(path: Path) -> tuple[SlaConfig | None, list[ConfigError]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [ConfigError(str(path), "", f"cannot read the SLA file ({exc.strerror})")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [ConfigError(str(path), "", f"not valid TOML: {exc}", decode_error_line(exc))]
    loader = _Loader(path, text)
    cfg = loader.config(data, path)
    return cfg, sorted(loader.errors, key=lambda e: e.line or 0)


def load_sla(path: Path) -> SlaConfig:
    """Read config/sla.toml; raises the first :class:`ConfigError` in file order (:func:`check_sla` lists all)."""
    cfg, errors = _parse(path)
    if errors:
        raise errors[0]
    assert cfg is not None
    return cfg


def check_sla(path: Path) -> list[ConfigError]:
    """Every problem in the file, in file order where known; [] when it loads."""
    return _parse(path)[1]
