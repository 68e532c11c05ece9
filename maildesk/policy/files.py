"""The admin's files in config/: agents.toml, rules.toml and sla.toml, held and reloaded.

:class:`PolicyFiles` keeps the last good version of each. :meth:`PolicyFiles.poll` (called every few
seconds by the daemon and on SIGHUP) re-reads files whose content changed; a broken file
is refused with the same messages as ``maildesk rules check`` and the last good version
stays in force. After a reload the database's agent rows follow agents.toml.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from maildesk.errors import ConfigError
from maildesk.policy.kb import load_kb
from maildesk.rules.reload import Reloader
from maildesk.sla.deadlines import SlaConfig, check_sla, load_sla

__all__ = ["PolicyFiles", "PolicyReload", "check_all"]

log = logging.getLogger("maildesk.rules")


@dataclass(frozen=True)
class PolicyReload:
    reloaded: tuple[str, ...] = ()
    errors: tuple[ConfigError, ...] = ()


def _sla_names(sla: SlaConfig | None) -> set[str]:
    return set(sla.policies) if sla is not None else set()


def _kb_stamp(directory: Path) -> tuple:
    try:
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in directory.glob("*.md")))
    except OSError:
        return ()


def _hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class PolicyFiles:
    def __init__(self, config_dir: Path, template_names: set[str]):
        self.config_dir = Path(config_dir)
        self.sla_path = self.config_dir / "sla.toml"
        self._sla_hash = _hash(self.sla_path)
        self.sla: SlaConfig | None = load_sla(self.sla_path) if self.sla_path.exists() else None
        self.rules = Reloader(self.config_dir, template_names=template_names, sla_names=lambda: _sla_names(self.sla))
        self.kb_dir = self.config_dir / "kb"
        self._kb_stamp = _kb_stamp(self.kb_dir)
        self.kb, problems = load_kb(self.kb_dir)
        for problem in problems:
            log.error("knowledge-base article skipped: %s", problem)

    @property
    def directory(self):
        return self.rules.directory

    @property
    def ruleset(self):
        return self.rules.ruleset

    def poll(self, quiet: bool = False) -> PolicyReload:
        """Re-read what changed. ``quiet``: log at DEBUG only (another process of the daemon
        reports the same reload)."""
        reloaded, errors = [], []
        digest = _hash(self.sla_path)
        if digest != self._sla_hash:
            self._sla_hash = digest
            problems = check_sla(self.sla_path) if digest else []
            if problems:
                errors.extend(problems)
            else:
                self.sla = load_sla(self.sla_path) if digest else None
                reloaded.append("sla.toml")
        stamp = _kb_stamp(self.kb_dir)
        if stamp != self._kb_stamp:
            self._kb_stamp = stamp
            kb, problems = load_kb(self.kb_dir)
            errors.extend(problems)
            self.kb = kb  # good articles load even when another one is broken
            reloaded.append("kb/")
        result = self.rules.poll()
        if result.reloaded:
            reloaded.append("agents.toml/rules.toml")
        errors.extend(result.errors)
        for problem in errors:
            log.log(logging.DEBUG if quiet else logging.ERROR, "config not reloaded, the previous version stays in force: %s", problem)
        if reloaded:
            log.log(logging.DEBUG if quiet else logging.INFO, "reloaded %s", ", ".join(reloaded))
        return PolicyReload(tuple(reloaded), tuple(errors))


def check_all(config_dir: Path, template_names: set[str]) -> list[ConfigError]:
    """Every problem in agents.toml, rules.toml and sla.toml, as `maildesk rules check` shows them."""
    from maildesk.policy.agents import Directory, read_directory
    from maildesk.rules import check_rules

    config_dir = Path(config_dir)
    problems: list[ConfigError] = []
    sla_path = config_dir / "sla.toml"
    sla = None
    if sla_path.exists():
        sla_problems = check_sla(sla_path)
        problems.extend(sla_problems)
        if not sla_problems:
            sla = load_sla(sla_path)
    directory = Directory()
    if (config_dir / "agents.toml").exists():
        directory, dir_problems = read_directory(config_dir)
        problems.extend(dir_problems)
    if (config_dir / "rules.toml").exists():
        problems.extend(check_rules(config_dir / "rules.toml", directory, template_names,
                                    _sla_names(sla) if sla is not None else None))
    problems.extend(load_kb(config_dir / "kb")[1])
    if sla is not None:
        for team, policy in sla.teams.items():
            if directory.agents and directory.team(team) is None:
                problems.append(ConfigError(str(sla_path), "[select] teams", f"no team {team!r} in agents.toml (policy {policy})"))
    return problems
