"""maildesk.toml -> frozen dataclasses.

Every section is a dataclass (:mod:`maildesk.config.sections`, re-exported here); :func:`_build` checks a TOML table against the dataclass's
fields (unknown keys, wrong types, missing required values) and raises one
:class:`ConfigError` naming the file, ``[section] key`` and what was expected.
Paths are relative to the config file's directory.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from maildesk.config.credentials import Secret, parse_secret
from maildesk.config.sections import (
    AuthConfig,
    Config,
    DatabaseConfig,
    ImapConfig,
    LogConfig,
    MailConfig,
    MetricsConfig,
    OutboundConfig,
    PathsConfig,
    ProcessingConfig,
    SmtpConfig,
    WorkflowConfig,
)
from maildesk.config.toml import TomlLocator, decode_error_line
from maildesk.config.web import WebConfig, check_web
from maildesk.errors import ConfigError

__all__ = [
    "Config",
    "DatabaseConfig",
    "ImapConfig",
    "MailConfig",
    "MetricsConfig",
    "OutboundConfig",
    "ProcessingConfig",
    "SmtpConfig",
    "find_config_path",
    "load_config",
]


_SECTIONS = {
    "database": DatabaseConfig,
    "smtp": SmtpConfig,
    "mail": MailConfig,
    "outbound": OutboundConfig,
    "processing": ProcessingConfig,
    "paths": PathsConfig,
    "log": LogConfig,
    "auth": AuthConfig,
    "workflow": WorkflowConfig,
    "metrics": MetricsConfig,
    "web": WebConfig,  # maildesk/config/web.py
}
_CHOICES = {
    ("database", "sqlite_synchronous"): ("full", "normal", "extra"),
    ("imap", "security"): ("tls", "starttls", "none"),
    ("imap", "after"): ("seen", "move", "delete"),
    ("log", "level"): ("DEBUG", "INFO", "WARNING", "ERROR"),
    ("workflow", "agent_reply_status"): ("open", "pending", "resolved"),
    ("workflow", "survey"): ("1-5", "good-bad", "off"),
}
_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$|^[^@\s<>\"]+@[a-z0-9-]+$", re.I)


def find_config_path(explicit: str | None) -> Path:
    """--config PATH, else $MAILDESK_CONFIG, else ./maildesk.toml."""
    return Path(explicit or os.environ.get("MAILDESK_CONFIG") or "maildesk.toml")


def load_config(path: str | os.PathLike) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read the config file ({exc.strerror}); pass --config PATH or set MAILDESK_CONFIG") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}", decode_error_line(exc)) from exc
    base = path.resolve().parent
    ctx = _Ctx(str(path), text, base)
    unknown = set(data) - set(_SECTIONS) - {"imap"}
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(str(path), f"[{name}]", f"unknown section; expected one of {', '.join(sorted([*_SECTIONS, 'imap']))}", ctx.line_of(name, None))
    for required in ("database", "mail"):
        if required not in data:
            raise ConfigError(str(path), f"[{required}]", "this section is required")
    sections = {}
    for name, cls in _SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(str(path), f"[{name}]", "expected a table")
        sections[name] = _build(cls, table, ctx, name)
    imap_raw = data.get("imap", [])
    if isinstance(imap_raw, dict):
        imap_raw = [imap_raw]
    imap = tuple(_build(ImapConfig, _with_default_name(t, i), ctx, f"imap.{i}") for i, t in enumerate(imap_raw))
    cfg = Config(path=path.resolve(), base_dir=base, imap=imap, **sections)
    _check(cfg, ctx)
    db = dataclasses.replace(cfg.database, url=_absolute_sqlite_url(cfg.database.url, base))
    return dataclasses.replace(cfg, database=db)


@dataclass
class _Ctx:
    file: str
    text: str
    base: Path

    def line_of(self, section: str, key: str | None) -> int | None:
        """Best-effort line number of ``key`` in ``[section]`` (tomllib gives none)."""
        return self.where.section_line(section, key)

    @cached_property
    def where(self) -> TomlLocator:
        return TomlLocator(self.text)

    def error(self, section: str, key: str, hint: str) -> ConfigError:
        shown = re.sub(r"\.\d+$", "", section)
        return ConfigError(self.file, f"[{shown}] {key}", hint, self.line_of(section, key))


def _with_default_name(table: object, index: int) -> object:
    if isinstance(table, dict) and "name" not in table:
        return {"name": table.get("username", f"imap{index}"), **table}
    return table


def _build(cls, table: dict, ctx: _Ctx, section: str):
    if not isinstance(table, dict):
        raise ctx.error(section, "", "expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in fields:
            raise ctx.error(section, key, f"unknown key; expected one of {', '.join(sorted(fields))}")
    values = {}
    for name, f in fields.items():
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ctx.error(section, name, "required key is missing")
            continue
        values[name] = _convert(table[name], hints[name], ctx, section, name)
        choices = _CHOICES.get((section.split(".")[0], name))
        if choices and values[name] not in choices:
            raise ctx.error(section, name, f"expected one of {', '.join(choices)}, got {values[name]!r}")
    return cls(**values)


def _convert(value, hint, ctx: _Ctx, section: str, key: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, args[0], ctx, section, key)
    if hint is Secret:
        return parse_secret(value, f"{ctx.file}: [{section.split('.')[0]}] {key}", ctx.base)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ctx.error(section, key, f"expected a list of strings, got {value!r}")
        return tuple(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.error(section, key, f"expected a number, got {value!r}")
        return float(value)
    expected = {int: "an integer", bool: "true or false", str: "a string"}[hint]
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ctx.error(section, key, f"expected {expected}, got {value!r}")
    return value


def _check(cfg: Config, ctx: _Ctx) -> None:
    if not cfg.mail.addresses:
        raise ctx.error("mail", "addresses", "expected at least one support address")
    for addr in cfg.mail.addresses:
        if not _ADDRESS.match(addr):
            raise ctx.error("mail", "addresses", f"{addr!r} is not a mail address")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,15}", cfg.mail.ticket_prefix):
        raise ctx.error("mail", "ticket_prefix", "expected 1-16 letters/digits starting with a letter, e.g. \"MD\"")
    out = cfg.outbound
    if out.smarthost and out.maildir:
        raise ctx.error("outbound", "smarthost", "set either smarthost or maildir, not both")
    if not out.smarthost and not out.maildir:
        raise ctx.error("outbound", "maildir", "set smarthost = \"host:port\" or maildir = \"var/sent\"")
    if out.smarthost and not re.fullmatch(r"\[?[^\s:\[\]]+\]?:\d{1,5}", out.smarthost):
        raise ctx.error("outbound", "smarthost", f"expected \"host:port\", got {out.smarthost!r}")
    if not 0 < cfg.smtp.port < 65536:
        raise ctx.error("smtp", "port", f"expected 1-65535, got {cfg.smtp.port}")
    if cfg.smtp.max_message_size < 1024:
        raise ctx.error("smtp", "max_message_size", "expected at least 1024 bytes")
    _check_smtp_limits(cfg, ctx)
    _check_sizes(cfg, ctx)
    _check_fanout_limits(cfg, ctx)
    if cfg.smtp.max_line_length < 998:
        raise ctx.error("smtp", "max_line_length", f"expected at least 998 octets (RFC 5321 4.5.3.1.6), got {cfg.smtp.max_line_length}")
    names = set()
    for i, box in enumerate(cfg.imap):
        if box.name in names:
            raise ctx.error(f"imap.{i}", "name", f"duplicate mailbox name {box.name!r}")
        names.add(box.name)
        if box.password is None and box.oauth2_token is None:
            raise ctx.error(f"imap.{i}", "password", f"mailbox {box.name!r}: set password or oauth2_token")
        if box.after == "move" and not box.move_to:
            raise ctx.error(f"imap.{i}", "move_to", f"mailbox {box.name!r}: after = \"move\" needs move_to")
        _check_imap(box, i, ctx)
    for name in cfg.auth.spam_headers:
        if name not in SPAM_FILTERS:
            raise ctx.error("auth", "spam_headers", f"unknown spam filter {name!r}; expected some of {', '.join(SPAM_FILTERS)}")
    check_web(cfg.web, lambda key, hint: ctx.error("web", key, hint))
    _check_secret(cfg.mail.secret.reveal(), ctx)  # fail at start, not at the first outgoing mail
    url = cfg.database.url
    if not url.startswith(("sqlite:", "postgresql")):
        raise ctx.error("database", "url", f"expected sqlite:///path or postgresql+psycopg://..., got {url!r}")


SPAM_FILTERS = ("spamassassin", "rspamd")
MIN_SECRET_LENGTH = 32
MIN_SECRET_BITS = 90.0
_SECRET_HINT = ('generate one with: python3 -c "import secrets; print(secrets.token_urlsafe(32))", or use '
                'secret = { file = "var/secret", generate = true }')


def _check_secret(value: str, ctx: _Ctx) -> None:
    """The secret signs reply, survey and bounce addresses and names our loop header: anyone
    can test guesses offline against mail we sent, so a short or repetitive one is refused."""
    if len(value) < MIN_SECRET_LENGTH:
        raise ctx.error("mail", "secret", f"too short ({len(value)} characters, at least {MIN_SECRET_LENGTH} needed); {_SECRET_HINT}")
    counts = [value.count(c) for c in set(value)]
    bits = -sum(n * math.log2(n / len(value)) for n in counts)  # empirical entropy of the whole string
    if bits < MIN_SECRET_BITS:
        raise ctx.error("mail", "secret", f"too predictable (about {bits:.0f} bits in its characters, at least "
                        f"{MIN_SECRET_BITS:.0f} needed); {_SECRET_HINT}")


def _check_smtp_limits(cfg: Config, ctx: _Ctx) -> None:
    smtp = cfg.smtp
    for key in ("max_connections", "max_connections_per_client"):
        if getattr(smtp, key) < 1:
            raise ctx.error("smtp", key, f"expected at least 1 connection, got {getattr(smtp, key)}")
    for key in ("idle_timeout", "session_timeout", "data_timeout", "limit_log_interval"):
        if getattr(smtp, key) <= 0:
            raise ctx.error("smtp", key, f"expected a positive number of seconds, got {getattr(smtp, key)}")
    if smtp.min_data_rate < 0:
        raise ctx.error("smtp", "min_data_rate", f"expected bytes per second, 0 for no minimum, got {smtp.min_data_rate}")
    if smtp.data_rate_grace < 0:
        raise ctx.error("smtp", "data_rate_grace", f"expected seconds (0 or more), got {smtp.data_rate_grace}")


def _check_sizes(cfg: Config, ctx: _Ctx) -> None:
    for section, key, least in (("processing", "batch_size", 1), ("processing", "batch_bytes", 1), ("smtp", "commit_batch_bytes", 1),
                                ("mail", "max_text_kept", 1024), ("workflow", "notification_text_max", 1024),
                                ("outbound", "alternative_max", 0), ("outbound", "record_every", 1),
                                ("outbound", "notice_max_attempts", 1)):
        value = getattr(getattr(cfg, section), key)
        if value < least:
            raise ctx.error(section, key, f"expected at least {least}, got {value}")
    listen = cfg.metrics.listen
    if listen and not (":" in listen and listen.rpartition(":")[2].isdigit() and 0 < int(listen.rpartition(":")[2]) < 65536):
        raise ctx.error("metrics", "listen", f"expected host:port such as \"127.0.0.1:9125\", got {listen!r}")
    if cfg.outbound.keep_sent_days < 0:
        raise ctx.error("outbound", "keep_sent_days", f"expected days (0 or more), got {cfg.outbound.keep_sent_days}")


def _check_imap(box: ImapConfig, i: int, ctx: _Ctx) -> None:
    section = f"imap.{i}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,89}", box.name):
        raise ctx.error(section, "name", f"expected up to 90 letters, digits or ._@+- , got {box.name!r}")
    if box.password is not None and box.oauth2_token is not None:
        raise ctx.error(section, "oauth2_token", f"mailbox {box.name!r}: set password or oauth2_token, not both")
    if not 0 < box.port < 65536:
        raise ctx.error(section, "port", f"expected 1-65535, got {box.port}")
    if box.move_to is not None and box.move_to == box.folder:
        raise ctx.error(section, "move_to", f"mailbox {box.name!r}: move_to must differ from folder ({box.folder!r})")
    if box.batch_size < 1:
        raise ctx.error(section, "batch_size", f"expected at least 1, got {box.batch_size}")
    if not 0 < box.idle_timeout <= 1740:
        raise ctx.error(section, "idle_timeout", "expected 1-1740 seconds (servers may end IDLE after 30 minutes)")
    for key in ("poll_interval", "timeout", "retry_base", "retry_max"):
        if getattr(box, key) <= 0:
            raise ctx.error(section, key, f"expected a positive number of seconds, got {getattr(box, key)}")


def _absolute_sqlite_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        rel, _, query = url[len(prefix):].partition("?")
        path = (base / rel).resolve()
        return prefix + str(path) + (f"?{query}" if query else "")
    return url


def _check_fanout_limits(cfg: Config, ctx: _Ctx) -> None:
    for section, key, least in (("mail", "max_addresses_per_mail", 1), ("mail", "max_security_events", 1),
                                ("workflow", "notify_limit", 0), ("workflow", "notify_window", 60)):
        value = getattr(getattr(cfg, section), key)
        if value < least:
            what = "seconds" if key.endswith("window") else "0 (no limit) or more" if least == 0 else "a count"
            raise ctx.error(section, key, f"expected {what}, at least {least}, got {value}")
