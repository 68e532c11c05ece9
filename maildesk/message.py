"""raw bytes -> one :class:`InboundMessage`, parsed once and passed to every stage.

Parsing is done by mail-parser (on top of the stdlib email package); HTML-only mail gets
its text from inscriptis. Nothing here raises on bad input: problems become entries in
``defects`` and the message is still usable.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

import mailparser
from inscriptis import get_text

__all__ = ["Attachment", "DeliveryReport", "InboundMessage", "clean_header", "parse", "parse_msgids"]

_MSGID = re.compile(r"<([^<>\s]{1,990})>")
_CTRL = re.compile(r"[\r\n\t\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


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
    from_addr: str
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

    def header(self, name: str, default: str = "") -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else default

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every address the mail was sent to: envelope, To and Cc, lower-cased, in order."""
        seen: dict[str, None] = {}
        for addr in (*self.rcpt_to, *(a for _, a in self.to), *(a for _, a in self.cc)):
            if addr:
                seen.setdefault(addr.lower(), None)
        return tuple(seen)

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """In-Reply-To first, then References newest first: the order to try when threading."""
        seen: dict[str, None] = {}
        for mid in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(mid, None)
        return tuple(seen)


def _undo_surrogates(text: str, charsets: tuple[str, ...] = ()) -> str:
    """Raw 8-bit header bytes (RFC 6532 UTF-8, or a legacy charset) that the email package
    kept as surrogate escapes, decoded: UTF-8 first, then the message's charsets, then cp1252."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    for charset in ("utf-8", *charsets, "cp1252"):
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("utf-8", "replace")


def clean_header(value: object, charsets: tuple[str, ...] = ()) -> str:
    """A header value as a single line: RFC 2047 decoded, no CR/LF or control characters."""
    if value is None:
        return ""
    text = _undo_surrogates(str(value), charsets)
    if "=?" in text:
        with contextlib.suppress(LookupError, ValueError, UnicodeError):
            text = str(make_header(decode_header(text)))
    return _CTRL.sub(" ", text).strip()


def parse_msgids(value: str) -> tuple[str, ...]:
    """All ``<id>`` tokens in a header value; a bare id without brackets is accepted too."""
    found = tuple(f"<{m}>" for m in _MSGID.findall(value or ""))
    if not found and value and value.strip() and " " not in value.strip() and "@" in value:
        found = (f"<{value.strip().strip('<>')}>",)
    return found


def parse(raw: bytes, *, mail_from: str = "", rcpt_to: tuple[str, ...] = (), source: str = "",
          queue: str | None = None, max_depth: int = 20) -> InboundMessage:
    defects: list[str] = []
    try:
        parsed = mailparser.parse_from_bytes(raw)
        msg: Message = parsed.message
    except Exception as exc:  # mail-parser raises many kinds on garbage; never crash on input
        defects.append(f"unparseable message: {type(exc).__name__}: {exc}")
        return _unparseable(raw, defects, mail_from, rcpt_to, source, queue)
    depth = _depth(msg)
    if depth > max_depth:
        defects.append(f"MIME nesting depth {depth} exceeds the limit of {max_depth}; only headers were read")
    defects.extend(str(d) for d in (parsed.defects_categories or ()))
    headers = _headers(msg)

    def first(name: str) -> str:
        values = headers.get(name)
        return values[0] if values else ""

    raw_headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        if name.lower() in ("from", "to", "cc", "reply-to"):
            raw_headers.setdefault(name.lower(), []).append(_undo_surrogates(str(value)))
    from_list = _addresses(raw_headers.get("from", ()))
    from_name, from_addr = from_list[0] if from_list else ("", "")
    text, html, attachments, charsets = ("", None, (), ())
    if depth <= max_depth:
        text, html, attachments, charsets = _body(parsed, msg, defects)
    mids = parse_msgids(first("message-id"))
    return InboundMessage(
        message_id=mids[0] if mids else None,
        in_reply_to=parse_msgids(first("in-reply-to")),
        references=parse_msgids(" ".join(headers.get("references", ()))),
        from_addr=from_addr,
        from_name=from_name,
        to=_addresses(raw_headers.get("to", ())),
        cc=_addresses(raw_headers.get("cc", ())),
        reply_to=_addresses(raw_headers.get("reply-to", ())),
        subject=first("subject"),
        date=_date(first("date")),
        text=text,
        html=html,
        attachments=attachments,
        headers=headers,
        charsets=charsets,
        mail_from=mail_from,
        rcpt_to=tuple(a.lower() for a in rcpt_to),
        source=source,
        queue=queue,
        delivery_report=_delivery_report(msg) if depth <= max_depth else None,
        defects=tuple(defects),
        size=len(raw),
    )


def _unparseable(raw, defects, mail_from, rcpt_to, source, queue) -> InboundMessage:
    text = raw.decode("utf-8", "replace")
    return InboundMessage(None, (), (), "", "", (), (), (), "", None, text, None, (), {}, (), mail_from,
                          tuple(rcpt_to), source, queue, None, tuple(defects), len(raw))


def _headers(msg: Message) -> dict[str, tuple[str, ...]]:
    charsets = tuple(c for c in msg.get_charsets() if c)
    out: dict[str, list[str]] = {}
    for name, value in msg.raw_items():  # raw: 8-bit bytes still as surrogates, see _undo_surrogates
        out.setdefault(name.lower(), []).append(clean_header(value, charsets))
    return {k: tuple(v) for k, v in out.items()}


def _addresses(values) -> tuple[tuple[str, str], ...]:
    """Addresses from raw header values; RFC 2047 is decoded per display name after splitting,
    so an encoded comma in a name cannot split one address into two."""
    result = []
    for name, addr in getaddresses([" ".join(v.split()) for v in values]):
        addr = addr.strip().strip("<>")
        if "@" in addr and not _CTRL.search(addr):
            result.append((clean_header(name), addr.lower()))
    return tuple(result)


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def _depth(msg: Message, level: int = 1) -> int:
    if not msg.is_multipart():
        return level
    payload = msg.get_payload()
    if not isinstance(payload, list) or not payload:
        return level
    if level > 100:
        return level
    return max(_depth(p, level + 1) for p in payload if isinstance(p, Message)) if payload else level


def _body(parsed, msg: Message, defects: list[str]):
    charsets = tuple(sorted({c.lower() for c in msg.get_charsets() if c}))
    plain = [t for t in (parsed.text_plain or []) if t and t.strip()]
    html_parts = [t for t in (parsed.text_html or []) if t and t.strip()]
    html = "\n".join(html_parts) or None
    if plain:
        text = "\n".join(plain)
    elif html:
        try:
            text = get_text(html)
        except Exception as exc:  # malformed HTML must not lose the message
            defects.append(f"HTML could not be converted to text: {exc}")
            text = re.sub(r"<[^>]+>", " ", html)
    else:
        text = ""
    text = text.replace("\r\n", "\n").strip("\n")
    attachments = []
    for att in parsed.attachments or ():
        payload = att.get("payload") or ""
        try:
            data = base64.b64decode(payload) if att.get("binary") else payload.encode(att.get("charset") or "utf-8", "replace")
        except (ValueError, LookupError) as exc:
            defects.append(f"attachment {att.get('filename')!r} could not be decoded: {exc}")
            continue
        ctype = clean_header(att.get("mail_content_type") or "application/octet-stream")
        attachments.append(Attachment(clean_header(att.get("filename") or "attachment"), ctype, data))
    return text, html, tuple(attachments), charsets


def _delivery_report(msg: Message) -> DeliveryReport | None:
    if msg.get_content_type() != "multipart/report" or msg.get_param("report-type", "").lower() != "delivery-status":
        return None
    recipients, status, action, diagnostic, original = [], "", "", "", None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            for block in part.get_payload() or []:
                if not isinstance(block, Message):
                    continue
                rcpt = block.get("final-recipient") or block.get("original-recipient")
                if rcpt:
                    recipients.append(clean_header(rcpt).split(";")[-1].strip().lower())
                status = status or clean_header(block.get("status", ""))
                action = action or clean_header(block.get("action", "")).lower()
                diagnostic = diagnostic or clean_header(block.get("diagnostic-code", ""))
        elif ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers") and original is None:
            original = _original_id(part)
    return DeliveryReport(original, tuple(recipients), status, action, diagnostic)


def _original_id(part: Message) -> str | None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        ids = parse_msgids(clean_header(inner.get("message-id", "")))
        return ids[0] if ids else None
    text = part.get_payload(decode=True) or b""
    match = re.search(rb"^message-id:\s*(<[^>\r\n]+>)", text, re.I | re.M)
    return match.group(1).decode("ascii", "replace") if match else None
