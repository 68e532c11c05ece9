"""Outgoing mail as a ``Message``: safe headers, threading headers, Outlook Thread-Index.

Every value that may come from an incoming message passes through :func:`one_line`, so
no input can add a header line; display names are encoded by the email package's
``Address`` (quoting, RFC 2047), never by string concatenation.
"""

from __future__ import annotations

import base64
import os
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import encoders
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, make_msgid

__all__ = ["Outgoing", "compose", "continue_thread_index", "one_line"]

_CTRL = re.compile(r"[\r\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_FILETIME_EPOCH = 116444736000000000  # 1601-01-01 -> 1970-01-01 in 100 ns units


def one_line(value: str | None, limit: int = 900) -> str:
    return " ".join(_CTRL.sub(" ", value or "").split())[:limit]


_POLICY = compat32.clone(linesep="\r\n")  # the wire format; compat32 is ~5x faster than policy.SMTP
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in raw form, 7-bit safe


def _address(name: str, addr: str) -> str:
    return formataddr((one_line(name, 200), one_line(addr, 320)), charset="utf-8")


def _header(value: str, limit: int = 900) -> str | Header:
    text = one_line(value, limit)
    return text if text.isascii() else Header(text, "utf-8")


@dataclass
class Outgoing:
    from_addr: str
    from_name: str
    to: list[tuple[str, str]]
    subject: str
    text: str
    html: str | None = None
    cc: list[tuple[str, str]] = field(default_factory=list)
    reply_to: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    auto_headers: dict[str, str] = field(default_factory=dict)
    extra_headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple = ()  # objects with filename, content_type, data
    thread_index: str | None = None
    thread_topic: str | None = None


def compose(out: Outgoing, now: datetime | None = None) -> tuple[Message, str]:
    """Build the message (CRLF line ends, ready for SMTP); returns it and its Message-ID."""
    now = now or datetime.now(UTC)
    domain = out.from_addr.rpartition("@")[2] or "localhost"
    text = MIMEText(out.text, "plain", _UTF8, policy=_POLICY)
    body: Message = text
    if out.html:
        body = MIMEMultipart("alternative", _subparts=[text, MIMEText(out.html, "html", _UTF8, policy=_POLICY)], policy=_POLICY)
    if out.attachments:
        body = MIMEMultipart("mixed", _subparts=[body, *(_attachment(a) for a in out.attachments)], policy=_POLICY)
    msg = body
    for part in msg.walk():  # MIME-Version belongs on the top level only
        if part is not msg:
            del part["MIME-Version"]
    msg["From"] = _address(out.from_name, out.from_addr)
    msg["To"] = ", ".join(_address(n, a) for n, a in out.to)
    if out.cc:
        msg["Cc"] = ", ".join(_address(n, a) for n, a in out.cc)
    if out.reply_to:
        msg["Reply-To"] = _address(out.from_name, out.reply_to)
    msg["Subject"] = _header(out.subject, 500)
    msg["Date"] = format_datetime(now.astimezone(UTC))
    message_id = make_msgid(idstring="md", domain=domain)
    msg["Message-ID"] = message_id
    if out.in_reply_to:
        msg["In-Reply-To"] = one_line(out.in_reply_to)
    refs = [one_line(r) for r in out.references if r][-20:]
    if refs:
        msg["References"] = " ".join(refs)
    if out.thread_topic:
        msg["Thread-Topic"] = _header(out.thread_topic, 255)
    if out.thread_index:
        msg["Thread-Index"] = one_line(out.thread_index, 400)
    for name, value in {**out.auto_headers, **out.extra_headers}.items():
        msg[one_line(name, 60).replace(":", "").replace(" ", "-")] = _header(value)
    return msg, message_id


def _attachment(att) -> Message:
    maintype, _, subtype = (att.content_type or "application/octet-stream").partition("/")
    part = MIMEBase(maintype or "application", subtype or "octet-stream", policy=_POLICY)
    part.set_payload(att.data)
    encoders.encode_base64(part)
    name = one_line(att.filename, 200) or "attachment"
    part.add_header("Content-Disposition", "attachment", filename=name if name.isascii() else ("utf-8", "", name))
    return part


def continue_thread_index(existing: str | None, now: datetime | None = None) -> str:
    """An Outlook ``Thread-Index`` that continues ``existing`` (or starts a new conversation).

    The value is base64 of a 22-byte header (6 bytes of FILETIME, a 16-byte GUID)
    followed by one 5-byte child block per reply, each holding the time since the header.
    """
    now = now or datetime.now(UTC)
    filetime = int(now.timestamp() * 10_000_000) + _FILETIME_EPOCH
    try:
        raw = base64.b64decode(existing or "", validate=True) if existing else b""
    except ValueError:
        raw = b""
    if len(raw) < 22 or (len(raw) - 22) % 5:
        head = struct.pack(">Q", filetime)[:6] + os.urandom(16)
        return base64.b64encode(head).decode()
    header_time = int.from_bytes(raw[:6] + b"\0\0", "big")
    delta = max(0, filetime - header_time)
    if delta < (1 << 49):
        block = (delta >> 18) & 0x7FFFFFFF  # leading bit 0: delta shifted by 18
    else:
        block = ((delta >> 23) & 0x7FFFFFFF) | 0x80000000
    child = struct.pack(">I", block) + bytes([os.urandom(1)[0]])
    return base64.b64encode(raw + child).decode()
