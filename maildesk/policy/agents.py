"""config/agents.toml -> a :class:`Directory` of agents, teams and VIP senders.

The file holds ``[[agents]]`` and ``[[teams]]`` tables and a top-level ``vip`` list
(addresses, or domains that also cover their subdomains). Team membership may be written
on either side (``teams`` on the agent, ``members`` on the team); the two are merged.

:func:`check_directory` collects every problem as a :class:`ConfigError` naming the file,
the key path (``[[agents]] #2 "bob" teams``), the line where it can be found and what was
expected; :func:`load_directory` raises the first. Working hours (agents) and opening
hours (teams) use config/sla.toml's ``[hours.*]`` syntax, parsed into
:class:`maildesk.sla.businesshours.BusinessHours`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from maildesk.config.toml import TomlLocator, toml_error
from maildesk.errors import ConfigError
from maildesk.sla.businesshours import BusinessHours, hours_from_table
from maildesk.vocab import NOTIFY_EVENTS

__all__ = [
    "ROLES",
    "STRATEGIES",
    "Agent",
    "Directory",
    "Team",
    "check_directory",
    "load_directory",
    "parse_directory",
    "parse_hours",
    "read_directory",
]

ROLES = ("agent", "admin")
STRATEGIES = ("none", "round_robin", "least_loaded", "skills")
_LOGIN = re.compile(r"[a-z][a-z0-9._-]{0,63}")
_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9-]+|[a-z0-9-]+")


def parse_hours(table: object, problem: Callable[[str, str], None]) -> BusinessHours | None:
    """An hours table in config/sla.toml's ``[hours.*]`` syntax -> BusinessHours.

    Each problem is reported as ``problem(key, hint)`` (key "" for the table as a whole);
    returns None when there was any.
    """
    if not isinstance(table, Mapping):
        problem("", 'expected a table like { timezone = "Europe/Berlin", mon-fri = "09:00-17:00" }')
        return None
    hours, problems = hours_from_table(table)
    for key, hint in problems:
        problem(key or "", hint)
    return hours


@dataclass(frozen=True)
class Agent:
    login: str
    name: str
    address: str
    aliases: tuple[str, ...] = ()
    role: str = "agent"
    teams: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    capacity: int | None = None  # most open tickets auto-assignment gives; None = no limit
    available: bool = True
    working_hours: BusinessHours | None = None
    notify_opt_out: tuple[str, ...] = ()  # event kinds (NOTIFY_EVENTS) this agent gets no mail for

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.address, *self.aliases)

    def wants(self, event: str) -> bool:
        return event not in self.notify_opt_out

    def on_duty(self, now: datetime) -> bool:
        """Available and, when working hours are set, inside them."""
        return self.available and (self.working_hours is None or self.working_hours.is_open(now))


@dataclass(frozen=True)
class Team:
    name: str
    members: tuple[str, ...] = ()  # logins, in rotation order
    lead: str | None = None
    strategy: str = "none"  # used when a rule routes to the team without saying `assign`
    skills: tuple[str, ...] = ()
    hours: BusinessHours | None = None


@dataclass(frozen=True)
class Directory:
    agents: tuple[Agent, ...] = ()
    teams: tuple[Team, ...] = ()
    vip: tuple[str, ...] = ()  # "addr@domain" or "domain" (covers subdomains)
    path: str = ""

    def __post_init__(self):
        by_addr = {a.lower(): ag for ag in self.agents for a in ag.addresses}
        object.__setattr__(self, "_by_login", {a.login: a for a in self.agents})
        object.__setattr__(self, "_by_addr", by_addr)
        object.__setattr__(self, "_teams", {t.name: t for t in self.teams})
        object.__setattr__(self, "_vip_addrs", frozenset(v for v in self.vip if "@" in v))
        object.__setattr__(self, "_vip_domains", frozenset(v for v in self.vip if "@" not in v))

    def agent(self, login: str) -> Agent | None:
        return self._by_login.get(login)

    def agent_by_address(self, address: str) -> Agent | None:
        return self._by_addr.get(address.strip().strip("<>").lower())

    def team(self, name: str) -> Team | None:
        return self._teams.get(name)

    def lead_for(self, team_name: str | None) -> Agent | None:
        """Who answers for a team's tickets: its ``lead``; without a team or lead, the first admin."""
        team = self.team(team_name) if team_name else None
        if team is not None and team.lead and self.agent(team.lead):
            return self.agent(team.lead)
        return next((a for a in self.agents if a.is_admin), None)

    def members(self, team: Team) -> tuple[Agent, ...]:
        return tuple(self._by_login[m] for m in team.members if m in self._by_login)

    def is_vip(self, address: str) -> bool:
        addr = address.strip().strip("<>").lower()
        if addr in self._vip_addrs:
            return True
        domain = addr.rpartition("@")[2]
        while domain:
            if domain in self._vip_domains:
                return True
            domain = domain.partition(".")[2]
        return False


def load_directory(config_dir: Path) -> Directory:
    """Load ``config_dir/agents.toml``; raises the first :class:`ConfigError`."""
    directory, problems = _load(Path(config_dir) / "agents.toml")
    if problems:
        raise problems[0]
    return directory


def check_directory(config_dir: Path) -> list[ConfigError]:
    """Every problem in ``config_dir/agents.toml`` (empty when it loads cleanly)."""
    return _load(Path(config_dir) / "agents.toml")[1]


def read_directory(config_dir: Path) -> tuple[Directory, list[ConfigError]]:
    """The directory (valid entries only) and every problem: what the two above share."""
    return _load(Path(config_dir) / "agents.toml")


def _load(path: Path) -> tuple[Directory, list[ConfigError]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return Directory(), [ConfigError(str(path), "", f"expected UTF-8 text: {exc}")]
    except OSError as exc:
        return Directory(), [ConfigError(str(path), "", f"cannot read the agents file ({exc.strerror}); see docs/rules.md")]
    return parse_directory(text, str(path))


def parse_directory(text: str, file: str = "agents.toml") -> tuple[Directory, list[ConfigError]]:
    """Parse agents.toml text; ``file`` is the name the errors carry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Directory(), [toml_error(file, exc)]
    return _Loader(file, TomlLocator(text)).build(data)


@dataclass
class _Loader:
    file: str
    where: TomlLocator
    problems: list[ConfigError] = field(default_factory=list)

    def add(self, table: str, index: int | None, label: str, key: str, hint: str) -> None:
        if index is None:
            self.problems.append(ConfigError(self.file, key, hint, self.where.key_line(key) or self.where.header_line(key)))
            return
        span = self.where.block(table, index)
        parts = key.split(".") if key else []
        line = next((n for k in reversed(parts) if (n := self.where.key_line(k, span))), None) if span else None
        path = f"[[{table}]] #{index + 1}" + (f' "{label}"' if label else "") + (f" {key}" if key else "")
        self.problems.append(ConfigError(self.file, path, hint, line or (span[0] if span else None)))

    def build(self, data: dict) -> tuple[Directory, list[ConfigError]]:
        for key in data:
            if key not in ("agents", "teams", "vip", "admins"):
                self.add("", None, "", key, "unknown key; expected [[agents]], [[teams]], vip = [...] or admins = [...]")
        agents = self._admins(self._agents(self._tables(data, "agents")), data.get("admins", []))
        teams = self._teams(self._tables(data, "teams"), agents)
        vip = self._vip(data.get("vip", []))
        known_teams = {t.name for t in teams}
        merged = []
        for i, agent in enumerate(agents):
            for name in agent.teams:
                if name not in known_teams:
                    self.add("agents", i, agent.login, "teams", f"unknown team {name!r}; expected one of {_names(known_teams)}")
            extra = tuple(t.name for t in teams if agent.login in t.members and t.name not in agent.teams)
            merged.append(replace(agent, teams=agent.teams + extra))
        teams = [replace(t, members=t.members + tuple(a.login for a in agents if t.name in a.teams and a.login not in t.members))
                 for t in teams]
        return Directory(tuple(merged), tuple(teams), vip, self.file), self.problems

    def _tables(self, data: dict, name: str) -> list[dict]:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.add("", None, "", name, f"expected [[{name}]] tables")
            return []
        return value

    def _field(self, table, index, label, spec: dict, raw: dict) -> dict:
        out = {}
        for key in raw:
            if key not in spec:
                self.add(table, index, label, key, f"unknown key; expected one of {', '.join(sorted(spec))}")
        for key, (kind, required) in spec.items():
            if key not in raw:
                if required:
                    self.add(table, index, label, key, f"required key is missing ({_KIND_TEXT[kind]})")
                continue
            value = raw[key]
            ok = _KIND_CHECK[kind](value)
            if not ok:
                self.add(table, index, label, key, f"expected {_KIND_TEXT[kind]}, got {value!r}")
                continue
            out[key] = tuple(value) if kind == "strs" else value
        return out

    def _hours(self, table, index, label, key, raw) -> BusinessHours | None:
        return parse_hours(raw, lambda k, hint: self.add(table, index, label, f"{key}.{k}" if k else key, hint))

    def _agents(self, raws: list[dict]) -> list[Agent]:
        agents, logins, addresses = [], set(), {}
        for i, raw in enumerate(raws):
            label = raw.get("login") if isinstance(raw.get("login"), str) else ""
            before = len(self.problems)
            f = self._field("agents", i, label, _AGENT_KEYS, raw)
            login = f.get("login")
            if login is not None and not _LOGIN.fullmatch(login):
                self.add("agents", i, label, "login", f"expected a lower-case letter, then letters, digits, '.', '_', '-'; got {login!r}")
            if login in logins:
                self.add("agents", i, label, "login", f"duplicate login {login!r}")
            logins.add(login)
            for key in ("address", "aliases"):
                values = [f[key]] if key == "address" and key in f else list(f.get(key, ()))
                for addr in values:
                    if not _ADDRESS.fullmatch(addr):
                        self.add("agents", i, label, key, f"{addr!r} is not a mail address")
                    elif addr.lower() in addresses:
                        self.add("agents", i, label, key, f"{addr!r} is already used by agent {addresses[addr.lower()]!r}")
                    else:
                        addresses[addr.lower()] = login
            if f.get("role", "agent") not in ROLES:
                self.add("agents", i, label, "role", f"expected one of {', '.join(ROLES)}, got {f['role']!r}")
            if isinstance(f.get("capacity"), int) and f["capacity"] < 0:
                self.add("agents", i, label, "capacity", "expected a number of open tickets >= 0 (leave it out for no limit)")
            for event in f.get("notify_opt_out", ()):
                if event not in NOTIFY_EVENTS:
                    self.add("agents", i, label, "notify_opt_out", f"unknown event {event!r}; expected some of {', '.join(NOTIFY_EVENTS)}")
            hours = self._hours("agents", i, label, "working_hours", f["working_hours"]) if "working_hours" in f else None
            if len(self.problems) == before:
                agents.append(Agent(**{**f, "address": f["address"].lower(), "aliases": tuple(a.lower() for a in f.get("aliases", ())),
                                       "working_hours": hours}))
        return agents

    def _teams(self, raws: list[dict], agents: list[Agent]) -> list[Team]:
        teams, names, logins = [], set(), {a.login for a in agents}
        for i, raw in enumerate(raws):
            label = raw.get("name") if isinstance(raw.get("name"), str) else ""
            before = len(self.problems)
            f = self._field("teams", i, label, _TEAM_KEYS, raw)
            if f.get("name") in names:
                self.add("teams", i, label, "name", f"duplicate team name {f['name']!r}")
            names.add(f.get("name"))
            for login in f.get("members", ()):
                if login not in logins:
                    self.add("teams", i, label, "members", f"unknown agent {login!r}; expected one of {_names(logins)}")
            if "lead" in f and f["lead"] not in logins:
                self.add("teams", i, label, "lead", f"unknown agent {f['lead']!r}; expected one of {_names(logins)}")
            if f.get("strategy", "none") not in STRATEGIES:
                self.add("teams", i, label, "strategy", f"expected one of {', '.join(STRATEGIES)}, got {f['strategy']!r}")
            hours = self._hours("teams", i, label, "hours", f["hours"]) if "hours" in f else None
            if len(self.problems) == before:
                teams.append(Team(**{**f, "hours": hours}))
        return teams

    def _admins(self, agents: list[Agent], value: object) -> list[Agent]:
        """``admins = ["login", ...]``: the same as ``role = "admin"`` on each of those agents."""
        logins = {a.login for a in agents}
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add("", None, "", "admins", f"expected a list of agent logins, got {value!r}")
            return agents
        for login in value:
            if login not in logins:
                self.add("", None, "", "admins", f"unknown agent {login!r}; expected one of {_names(logins)}")
        return [replace(a, role="admin") if a.login in value else a for a in agents]

    def _vip(self, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add("", None, "", "vip", f"expected a list of addresses or domains, got {value!r}")
            return ()
        out = []
        for entry in value:
            entry = entry.strip().lower().lstrip("@")
            if not (_ADDRESS.fullmatch(entry) if "@" in entry else _DOMAIN.fullmatch(entry)):
                self.add("", None, "", "vip", f"{entry!r} is neither a mail address nor a domain")
            out.append(entry)
        return tuple(out)


def _names(names) -> str:
    return ", ".join(sorted(names)) or "(none defined)"


_KIND_CHECK = {
    "str": lambda v: isinstance(v, str) and bool(v.strip()),
    "strs": lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v),
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "table": lambda v: isinstance(v, dict),
}
_KIND_TEXT = {"str": "a non-empty string", "strs": "a list of strings", "bool": "true or false", "int": "an integer",
              "table": "a table"}
_AGENT_KEYS = {
    "login": ("str", True), "name": ("str", True), "address": ("str", True), "aliases": ("strs", False),
    "role": ("str", False), "teams": ("strs", False), "skills": ("strs", False), "capacity": ("int", False),
    "available": ("bool", False), "working_hours": ("table", False), "notify_opt_out": ("strs", False),
}
_TEAM_KEYS = {
    "name": ("str", True), "members": ("strs", False), "lead": ("str", False), "strategy": ("str", False),
    "skills": ("strs", False), "hours": ("table", False),
}
