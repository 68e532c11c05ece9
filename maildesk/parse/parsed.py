"""What parsing a message yields: :class:`InboundMessage` and the :class:`DeliveryReport` it may carry.

Plain frozen dataclasses, so that every stage (and :mod:`maildesk.parse.autodetect`, which
:func:`maildesk.parse.message.parse` calls) can take a parsed message without importing the
parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maildesk.parse.mimewalk import Attachment

__all__ = ["DeliveryReport", "InboundMessage"]


@dataclass(frozen=True)
class DeliveryReport:
    """What a delivery status notification (RFC 3464) says about one of our mails."""

    original_message_id: str | None
    recipients: tuple[str, ...]
    status: str  # e.g. "5.1.1"
    action: str  # failed, delayed, delivered, relayed, expanded
    diagnostic: str

    @property
    def permanent(self) -> bool:
        return self.action == "failed" or self.status.startswith("5")


@dataclass(frozen=True)
class InboundMessage:
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_addr: str  # lower-cased; an IDN domain in its ASCII (xn--) form
    from_name: str
    to: tuple[tuple[str, str], ...]
    cc: tuple[tuple[str, str], ...]
    reply_to: tuple[tuple[str, str], ...]
    subject: str
    date: datetime | None
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    headers: dict[str, tuple[str, ...]]  # lower-case name -> decoded values, CR/LF removed
    charsets: tuple[str, ...] = ()
    mail_from: str = ""  # SMTP envelope sender ("" = null return path)
    rcpt_to: tuple[str, ...] = ()
    source: str = ""
    queue: str | None = None
    delivery_report: DeliveryReport | None = None
    defects: tuple[str, ...] = ()
    size: int = 0
    text_from_html: bool = False  # no text/plain part: ``text`` was made from ``html``
    bounce_failures: tuple[str, ...] | None = None  # flufl.bounce's finding; None = not scanned (no bounce hint)

    def header(self, name: str, default: str = "") -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else default

    @property
    def null_return_path(self) -> str | None:
        """Where the mail says its return path is null: "envelope" (MAIL FROM:<> over SMTP or
        LMTP), "header" (``Return-Path: <>``, which the delivering MTA writes for IMAP and the
        pipe), or None."""
        if self.source in ("smtp", "lmtp") and self.mail_from == "":
            return "envelope"
        if self.header("return-path").replace(" ", "") == "<>":
            return "header"
        return None

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every address the mail was sent to: envelope, To and Cc, lower-cased, in order."""
        return tuple(dict.fromkeys(a.lower() for a in (*self.rcpt_to, *(a for _, a in self.to), *(a for _, a in self.cc)) if a))

    @property
    def sender(self) -> str:
        """Who to show the mail as from: the ``From:`` address, or the envelope sender when
        ``From:`` holds none that parses (also who a new ticket's requester is)."""
        return self.from_addr or self.mail_from.lower()

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """In-Reply-To first, then References newest first: the order to try when threading."""
        return tuple(dict.fromkeys((*self.in_reply_to, *reversed(self.references))))
