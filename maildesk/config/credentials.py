"""Secret values that may come from the config file, the environment, a file or a command.

In TOML a secret is either a plain string or one of::

    secret = { env = "MAILDESK_SECRET" }
    secret = { file = "var/secret" }                 # path relative to the config file
    secret = { file = "var/secret", generate = true } # created (0600, random) if missing
    token  = { command = "oauth2-token --account support", ttl = 3000 }

A command's output is cached for ``ttl`` seconds (default 300) and re-run after that,
or at once when the caller asks for a refresh (an XOAUTH2 token that the server
rejected as expired).

Inside :func:`without_generating` (the read-only commands) a missing ``generate = true``
file is not created: the secret is a random value that lives as long as the process,
which signs nothing that outlives it.
"""

from __future__ import annotations

import contextvars
import os
import secrets
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from maildesk.errors import ConfigError

__all__ = ["Secret", "parse_secret", "without_generating"]

_GENERATE: contextvars.ContextVar[bool] = contextvars.ContextVar("maildesk_generate_secrets", default=True)


@contextmanager
def without_generating() -> Iterator[None]:
    """Secrets parsed in this block never create their ``generate = true`` file."""
    token = _GENERATE.set(False)
    try:
        yield
    finally:
        _GENERATE.reset(token)


@dataclass(frozen=True)
class Secret:
    """A lazily resolved secret. ``repr`` never shows the value."""

    kind: str  # "value" | "env" | "file" | "command"
    source: str
    where: str  # "maildesk.toml: [mail] secret", for error messages
    ttl: float = 300.0
    _cache: dict = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def __repr__(self) -> str:
        return f"Secret({self.kind}={self.source if self.kind != 'value' else '***'})"

    def reveal(self, refresh: bool = False) -> str:
        if self.kind == "value":
            return self.source
        if self.kind == "env":
            value = os.environ.get(self.source)
            if not value:
                raise ConfigError(self.where, "", f"environment variable {self.source} is not set or empty; export it or use {{ file = ... }}")
            return value
        if self.kind == "file":
            try:
                return Path(self.source).read_text().strip()
            except OSError as exc:
                raise ConfigError(self.where, "", f"cannot read secret file {self.source}: {exc.strerror}") from exc
        return self._run_command(refresh)

    def _run_command(self, refresh: bool) -> str:
        with self._lock:
            cached = self._cache.get("value")
            if cached and not refresh and time.monotonic() < self._cache["until"]:
                return cached
            try:
                proc = subprocess.run(shlex.split(self.source), capture_output=True, text=True, timeout=60, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ConfigError(self.where, "", f"secret command {self.source!r} could not run: {exc}") from exc
            value = proc.stdout.strip()
            if proc.returncode != 0 or not value:
                err = proc.stderr.strip().splitlines()[-1:] or ["no output"]
                raise ConfigError(self.where, "", f"secret command {self.source!r} failed (exit {proc.returncode}): {err[0]}")
            self._cache.update(value=value, until=time.monotonic() + self.ttl)
            return value


def parse_secret(raw: object, where: str, base_dir: Path) -> Secret:
    """Turn a TOML value into a :class:`Secret`, or raise ConfigError naming ``where``."""
    if isinstance(raw, str):
        return Secret("value", raw, where)
    if not isinstance(raw, dict):
        raise ConfigError(where, "", "expected a string or { env = ... } / { file = ... } / { command = ... }")
    kinds = [k for k in ("env", "file", "command") if k in raw]
    extra = set(raw) - {"env", "file", "command", "generate", "ttl"}
    if len(kinds) != 1 or extra:
        raise ConfigError(where, "", "expected exactly one of env, file or command (plus optional generate/ttl)")
    kind = kinds[0]
    source = raw[kind]
    if not isinstance(source, str) or not source:
        raise ConfigError(where, "", f"{kind}: expected a non-empty string")
    if kind == "file":
        path = Path(source)
        path = path if path.is_absolute() else base_dir / path
        if raw.get("generate") and not path.exists():
            if not _GENERATE.get():
                return Secret("value", secrets.token_urlsafe(32), where)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32) + "\n")
        source = str(path)
    ttl = raw.get("ttl", 300)
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
        raise ConfigError(where, "", "ttl: expected a positive number of seconds")
    return Secret(kind, source, where, float(ttl))
