"""Outgoing mail as wire bytes: safe headers, threading headers, Outlook Thread-Index.

Every value that may come from an incoming message passes through :func:`one_line`, so
no input can add a header line; display names and non-ASCII values are encoded by the
email package (``formataddr``, ``Header``: quoting, RFC 2047), never by concatenation.

Internationalized addresses (RFC 6531): a non-ASCII domain goes out in its IDNA form
(``jan@xn--bcher-kva.example``, :func:`wire_address`), which any server accepts; a
non-ASCII local part (``søren@example.dk``) is written as raw UTF-8 (RFC 6532; an
address cannot be RFC 2047 encoded), its display name still RFC 2047. Such a mail can
only be sent with SMTPUTF8 (:func:`needs_smtputf8`, :mod:`maildesk.outgoing.deliver`). Only an
address makes a mail need it: a customer's UTF-8 Message-ID is left out of the threading
headers of a mail to ASCII addresses.

The MIME body (text, HTML, attachments) is built once by :func:`build_body` and may be
shared by several copies of one mail (a notification to each agent differs only in its
headers). Bodies are encoded with the C codecs of :mod:`binascii`: 7bit when the text is
ASCII, quoted-printable when it is mostly ASCII, base64 otherwise; attachments base64.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header
from email.utils import encode_rfc2231, format_datetime, formataddr

from maildesk.outgoing.tokens import new_key

__all__ = ["Body", "Outgoing", "build_body", "compose", "continue_thread_index", "message_id_domain", "needs_smtputf8", "new_message_id",
           "one_line", "wire_address"]

_CTRL = re.compile(r"[\r\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+.^_`|~-]")
_FILETIME_EPOCH = 116444736000000000  # 1601-01-01 -> 1970-01-01 in 100 ns units
_ASCII = bytes(range(128))


def one_line(value: str | None, limit: int = 900) -> str:
    return " ".join(_CTRL.sub(" ", value or "").split())[:limit]


def wire_address(addr: str) -> str:
    """``addr`` as it goes into a header or the envelope: a non-ASCII domain in its IDNA
    (``xn--``) form; a local part stays as it is (only SMTPUTF8 can carry a non-ASCII one)."""
    local, at, domain = addr.rpartition("@")
    if not at or domain.isascii():
        return addr
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:  # not a valid IDN: sent as it is (with SMTPUTF8, or refused by the deliverer)
        return addr


def needs_smtputf8(addresses, raw: bytes) -> list[str]:
    """The addresses (envelope or header) that only SMTPUTF8 can carry; ``["its headers"]``
    when only the header section of ``raw`` is not ASCII; empty when plain SMTP will do."""
    found = [a for a in addresses if not a.isascii()]
    if not found and not raw.partition(b"\r\n\r\n")[0].isascii():
        found = ["its headers"]
    return found


def _address(name: str, addr: str) -> str:
    name, addr = one_line(name, 200), wire_address(one_line(addr, 320))
    if addr.isascii():
        return formataddr((name, addr), charset="utf-8")
    if not name:
        return addr
    # RFC 6532: the address in UTF-8 as it is; the display name encoded exactly as formataddr
    # encodes it (quoted, or RFC 2047), which it only does next to an ASCII address.
    shown = formataddr((name, "a@b"), charset="utf-8").removesuffix(" <a@b>")
    return f"{shown} <{addr}>"


def _fold(name: str, value: str) -> str:
    """``Name: value`` folded at spaces to lines of about 78 characters (ASCII only)."""
    line = f"{name}: {value}"
    if len(line) <= 78:
        return line
    out, cur = [], f"{name}:"
    for word in value.split(" "):
        if len(cur) + 1 + len(word) > 78 and cur.strip() and cur != f"{name}:":
            out.append(cur)
            cur = ""
        cur += " " + word
    out.append(cur)
    return "\r\n".join(out)


def _header(name: str, value: str, limit: int = 900) -> str:
    text = one_line(value, limit)
    if text.isascii():
        return _fold(name, text)
    return f"{name}: " + Header(text, "utf-8", header_name=name).encode(linesep="\r\n")


def message_id_domain(from_addr: str) -> str:
    return one_line(from_addr.rpartition("@")[2], 255).replace(" ", "") or "localhost"


def new_message_id(domain: str, key: str | None = None) -> str:
    """``<key@domain>``: 128 bits from :mod:`secrets` (:func:`maildesk.outgoing.tokens.new_key`), so that
    nobody can predict our next Message-ID from the ones they received (Python's ``random``,
    which ``email.utils.make_msgid`` uses, can be predicted from its output)."""
    return f"<{key or new_key()}@{domain}>"


@dataclass(frozen=True)
class Body:
    """A MIME entity ready for the wire: its Content-* header lines and its encoded content."""

    headers: str  # CRLF-terminated lines
    content: bytes


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def _text_part(text: str, subtype: str) -> Body:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8", "replace")
    if data.isascii() and (len(data) < 999 or max(map(len, data.split(b"\n"))) < 999):
        cte, content = "7bit", data
    elif len(data[:4096].translate(None, _ASCII)) * 5 < min(len(data), 4096):  # mostly ASCII: readable as QP
        cte, content = "quoted-printable", binascii.b2a_qp(data, istext=True)
    else:
        cte, content = "base64", base64.encodebytes(data)
    if not content.endswith(b"\n"):
        content += b"\n"
    return Body(f"Content-Type: text/{subtype}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: {cte}\r\n", _crlf(content))


def _param(name: str, value: str) -> str:
    """A MIME parameter: quoted when ASCII, RFC 2231 (``name*=utf-8''...``) otherwise."""
    if value.isascii():
        return f'{name}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
    return f"{name}*={encode_rfc2231(value, 'utf-8')}"


def _attachment(att) -> Body:
    maintype, _, subtype = (att.content_type or "application/octet-stream").lower().partition("/")
    ctype = f"{_TOKEN_UNSAFE.sub('', maintype) or 'application'}/{_TOKEN_UNSAFE.sub('', subtype) or 'octet-stream'}"
    name = one_line(att.filename, 200) or "attachment"
    headers = (f"Content-Type: {ctype}; {_param('name', name)}\r\nContent-Transfer-Encoding: base64\r\n"
               f"Content-Disposition: attachment; {_param('filename', name)}\r\n")
    return Body(headers, _crlf(base64.encodebytes(att.data)))


def _multipart(subtype: str, parts: list[Body]) -> Body:
    while True:
        boundary = f"=_md_{os.urandom(12).hex()}"  # "=_" never occurs in base64 or quoted-printable content
        marker = f"--{boundary}".encode()
        if not any(marker in p.content for p in parts):
            break
    chunks = [b"This is a multi-part message in MIME format.\r\n"]
    for p in parts:
        chunks += [b"\r\n", marker, b"\r\n", p.headers.encode(), b"\r\n", p.content]
    chunks += [b"\r\n", marker, b"--\r\n"]
    return Body(f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n", b"".join(chunks))


def build_body(text: str, html: str | None = None, attachments: tuple = ()) -> Body:
    """text/plain, or multipart/alternative with the HTML, inside multipart/mixed with files."""
    body = _text_part(text, "plain")
    if html:
        body = _multipart("alternative", [body, _text_part(html, "html")])
    if attachments:
        body = _multipart("mixed", [body, *(_attachment(a) for a in attachments)])
    return body


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
    message_id: str | None = None  # from new_message_id(); a new one when None


def compose(out: Outgoing, now: datetime | None = None, body: Body | None = None) -> tuple[bytes, str]:
    """The mail on the wire (CRLF line ends, ready for SMTP) and its Message-ID. ``body``,
    from :func:`build_body`, is used instead of building one from ``out``'s text, HTML and files."""
    now = now or datetime.now(UTC)
    body = body or build_body(out.text, out.html, out.attachments)
    message_id = out.message_id or new_message_id(message_id_domain(out.from_addr))
    lines = [_fold("From", _address(out.from_name, out.from_addr)),
             _fold("To", ", ".join(_address(n, a) for n, a in out.to))]
    if out.cc:
        lines.append(_fold("Cc", ", ".join(_address(n, a) for n, a in out.cc)))
    if out.reply_to:
        lines.append(_fold("Reply-To", _address(out.from_name, out.reply_to)))
    lines += [_header("Subject", out.subject, 500), f"Date: {format_datetime(now.astimezone(UTC))}",
              f"Message-ID: {message_id}"]
    # A Message-ID in UTF-8 (RFC 6532) is kept only in a mail that needs SMTPUTF8 for its
    # addresses anyway: a mail to ASCII addresses must never fail for lack of it.
    utf8 = not all(wire_address(a).isascii() for a in (out.from_addr, out.reply_to or "", *(a for _, a in [*out.to, *out.cc])))
    if out.in_reply_to and (utf8 or out.in_reply_to.isascii()):
        lines.append(_fold("In-Reply-To", one_line(out.in_reply_to)))
    refs = [one_line(r).replace(" ", "") for r in out.references if r and (utf8 or r.isascii())][-20:]
    if refs:
        lines.append(_fold("References", " ".join(refs)))
    if out.thread_topic:
        lines.append(_header("Thread-Topic", out.thread_topic, 255))
    if out.thread_index:
        lines.append(_fold("Thread-Index", one_line(out.thread_index, 400).replace(" ", "")))
    for name, value in {**out.auto_headers, **out.extra_headers}.items():
        lines.append(_header(one_line(name, 60).replace(":", "").replace(" ", "-"), value))
    lines.append("MIME-Version: 1.0")
    head = "\r\n".join(lines) + "\r\n" + body.headers + "\r\n"
    return head.encode("utf-8", "replace") + body.content, message_id


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
