"""Logging: one line per event, context ids from contextvars, addresses redacted at INFO
(in every line, by the handler's formatter, not only where :func:`redact` is called).

:func:`redact` turns ``jane.doe@example.com`` into ``j***@example.com`` unless the
logger runs at DEBUG or redaction is switched off (``[log] redact_addresses = false``).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from types import MappingProxyType

__all__ = ["bind", "configure", "redact", "redact_text"]

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("maildesk_log_context", default=MappingProxyType({}))
_redacting = True
_ADDR = re.compile(r"([\w.%+\-])[\w.%+\-]*@([\w\-]+(?:\.[\w\-]+)*)")


def redact(address: str | None) -> str:
    if not address:
        return "<>"
    return redact_text(address)


def redact_text(text: str) -> str:
    return _ADDR.sub(r"\1***@\2", text) if _redacting else text


class bind:
    """Bind context ids (inbox, ticket, message) for every log line in the block."""

    def __init__(self, **ids):
        self.ids = ids

    def __enter__(self):
        self.token = _context.set({**_context.get(), **self.ids})
        return self

    def __exit__(self, *exc):
        _context.reset(self.token)


class _RedactingFormatter(logging.Formatter):
    """Every line, whatever put an address into it (an outcome naming a ``#cc`` argument, a
    library's message), has its addresses redacted while redaction is on."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get()
        record.ctx = "".join(f" {k}={v}" for k, v in ctx.items())
        return True


def configure(level: str = "INFO", redact_addresses: bool = True, stream=None) -> None:
    global _redacting
    _redacting = redact_addresses and level.upper() != "DEBUG"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s:%(ctx)s %(message)s"))
    root = logging.getLogger("maildesk")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    for noisy in ("apscheduler", "aiosmtpd", "mail.log", "mailparser_reply"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
