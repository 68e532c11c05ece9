"""One message as the conditions see it: derived values computed once, on first use."""

from __future__ import annotations

import codecs
from datetime import datetime
from functools import cached_property
from typing import Any

from maildesk.parse.addresses import base_address
from maildesk.parse.message import InboundMessage
from maildesk.rules.language import detect_language

__all__ = ["BODY_LIMIT", "Facts", "normalize_charset"]

BODY_LIMIT = 256 * 1024  # body conditions look at the first 256 KiB of text


class Facts:
    """One message as the conditions see it; every derived value is computed on first use."""

    def __init__(self, msg: InboundMessage, ctx: Any, now: datetime):
        self.msg, self.ctx, self.now = msg, ctx, now

    @cached_property
    def sender(self) -> str:
        return (self.msg.from_addr or self.msg.mail_from).lower()

    @cached_property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]

    @cached_property
    def recipients(self) -> tuple[str, ...]:
        """Envelope, To and Cc; ``support+x@d`` also counts as ``support@d``."""
        out = dict.fromkeys(self.msg.recipients)
        for addr in self.msg.recipients:
            if (base := base_address(addr)) != addr:
                out.setdefault(base, None)
        return tuple(out)

    @cached_property
    def subject_folded(self) -> str:
        return self.msg.subject.casefold()

    @cached_property
    def body(self) -> str:
        return self.msg.text[:BODY_LIMIT]

    @cached_property
    def body_folded(self) -> str:
        return self.body.casefold()

    @cached_property
    def language(self) -> str | None:
        known = getattr(self.ctx, "language", None)
        return known or detect_language(self.msg.subject, self.msg.text, self.msg.header("content-language"))

    @cached_property
    def charsets(self) -> tuple[str, ...]:
        return tuple(normalize_charset(c) for c in self.msg.charsets)


def normalize_charset(name: str) -> str:
    """``cp1251`` and ``windows-1251`` are one charset: compare Python's canonical codec names."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name.lower()
