"""Re-read agents.toml and rules.toml when they change; keep the last good ones on error.

No threads and no timers: the daemon calls :meth:`Reloader.poll` when it sees fit (a
scheduler job, SIGHUP). A file counts as changed when its size, mtime or inode moved AND
its content hash differs, so ``touch`` alone reloads nothing. Both files are validated
together (rules name agents and teams) and swapped in together, or not at all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from maildesk.errors import ConfigError
from maildesk.policy.agents import Directory, read_directory
from maildesk.rules import read_rules
from maildesk.rules.schema import RuleSet
from maildesk.sla.businesshours import BusinessHours

__all__ = ["ReloadResult", "Reloader"]

Names = set[str] | Callable[[], set[str]] | None


@dataclass(frozen=True)
class ReloadResult:
    changed: bool  # a watched file is different from the version last looked at
    reloaded: bool  # the new directory and rules are now in use
    errors: tuple[ConfigError, ...] = ()  # why the new version was refused (old ones stay in use)


class Reloader:
    """Holds the current :class:`Directory` and :class:`RuleSet` for the daemon.

    The constructor loads both and raises the first :class:`ConfigError` if they are bad:
    there is no last good version to fall back to at start.
    """

    def __init__(self, config_dir: Path, rules_path: Path | None = None, *, template_names: Names = None,
                 sla_names: Names = None, hours: Mapping[str, BusinessHours] | Callable[[], Mapping] | None = None):
        self.config_dir = Path(config_dir)
        self.agents_path = self.config_dir / "agents.toml"
        self.rules_path = Path(rules_path) if rules_path else self.config_dir / "rules.toml"
        self._template_names, self._sla_names, self._hours = template_names, sla_names, hours
        self._stats: dict[Path, tuple | None] = {}
        self._hashes: dict[Path, str | None] = {}
        self._observe()
        directory, ruleset, errors = self._load(None)
        if errors:
            raise errors[0]
        self.directory: Directory = directory
        self.ruleset: RuleSet = ruleset
        self.last_errors: tuple[ConfigError, ...] = ()

    def poll(self) -> ReloadResult:
        """Reload if a file changed. On errors the previous directory and rules stay in use."""
        if not self._observe():
            return ReloadResult(False, False, ())
        directory, ruleset, errors = self._load(self.directory)
        if errors:
            self.last_errors = tuple(errors)
            return ReloadResult(True, False, self.last_errors)
        self.directory, self.ruleset, self.last_errors = directory, ruleset, ()
        return ReloadResult(True, True, ())

    def _observe(self) -> bool:
        """Record the files' current state; True when any content changed since last time."""
        changed = False
        for path in (self.agents_path, self.rules_path):
            try:
                st = os.stat(path)
                stat = (st.st_size, st.st_mtime_ns, st.st_ino)
            except OSError:
                stat = None
            if path in self._stats and stat == self._stats[path]:
                continue
            self._stats[path] = stat
            digest = _digest(path) if stat else None
            if self._hashes.get(path, "") != digest:
                changed = changed or path in self._hashes
                self._hashes[path] = digest
        return changed

    def _load(self, fallback: Directory | None) -> tuple[Directory, RuleSet, list[ConfigError]]:
        """At start a missing file means "none yet" (no agents, no rules); a file that goes
        missing while running is an error that keeps the last good version (a half-done edit)."""
        starting = fallback is None
        if starting and not self.agents_path.exists():
            directory, errors = Directory(), []
        else:
            directory, errors = read_directory(self.config_dir)
        if errors:
            directory = fallback or Directory()
        if starting and not self.rules_path.exists():
            return directory, RuleSet(path=str(self.rules_path)), errors
        ruleset, rule_errors = read_rules(self.rules_path, directory, _names(self._template_names),
                                         _names(self._sla_names), _names(self._hours))
        return directory, ruleset, errors + rule_errors


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _names(names):
    return names() if callable(names) else names
