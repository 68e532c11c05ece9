"""raw bytes -> one :class:`InboundMessage`, parsed once and passed to every stage.

:func:`parse` has the MIME tree read by :mod:`maildesk.parse.mimewalk` (bodies, attachments,
winmail.dat) and reads the rest here: headers (decoded by :mod:`maildesk.parse.charsets`),
addresses, Message-IDs, the Date and, for a bounce, the :class:`DeliveryReport`; a mail that
:func:`maildesk.parse.autodetect.bounce_hint` suspects of being a plain-text bounce is also scanned
with flufl.bounce (``bounce_failures``).
Nothing here raises on bad input: problems become ``defects`` and the message stays usable.
:class:`Attachment`, :func:`clean_header`, :class:`InboundMessage` and :class:`DeliveryReport` are
re-exported from the modules that define them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import secrets
from datetime import UTC, datetime
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from maildesk.parse.autodetect import bounce_hint, failed_recipients
from maildesk.parse.charsets import CONTROL, FOLD, clean_header, decode_text, unsurrogate
from maildesk.parse.mimewalk import Attachment, BodyWalk, html_to_text, parse_tree
from maildesk.parse.parsed import DeliveryReport, InboundMessage

__all__ = ["CUT_NOTE", "MAX_TEXT", "Attachment", "DeliveryReport", "InboundMessage", "clean_header", "normalize_address", "parse",
           "parse_msgids"]

_MSGID = re.compile(r"<([^<>\s]{1,990})>")
_BARE_MSGID = re.compile(r"[^\s<>,;\"()]{1,500}@[^\s<>,;\"()]{1,489}")
_ADDR = re.compile(r"[^\s<>()\[\],;:\"]+@[^\s<>()\[\],;:\"@]+")
_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_UNUSABLE_REPORTED = 5  # "unusable address" defects listed one by one; the rest are counted
_HARD_DEPTH = 100  # max_depth is clamped to this: deeper MIME is never legitimate
_SINGLE = ("from", "sender", "to", "cc", "reply-to", "subject", "date", "message-id", "in-reply-to", "references")
MAX_TEXT = 1 << 20  # [mail] max_text_kept
CUT_NOTE = ("[maildesk: this text was cut here; the mail's text has {size:,} bytes, the first {kept:,} are kept "
            "([mail] max_text_kept). The whole mail is kept as received (`maildesk inbox list`), its attachments whole.]")
_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")


def parse_msgids(value: str) -> tuple[str, ...]:
    """All ``<id>`` tokens in a header value, in order, once each; if there are none, bare
    ``local@domain`` tokens (old mailers drop the brackets)."""
    found = _MSGID.findall(value or "") or _BARE_MSGID.findall(value or "")
    return tuple(dict.fromkeys(f"<{m}>" for m in found))


def parse(raw: bytes, *, mail_from: str = "", rcpt_to: tuple[str, ...] = (), source: str = "",
          queue: str | None = None, max_depth: int = 20, max_text: int = MAX_TEXT, max_addresses: int = 100) -> InboundMessage:
    """``max_text``: bytes of text, and of HTML, kept (``[mail] max_text_kept``); a longer body
    is cut there, a defect says so and the text ends with :data:`CUT_NOTE`. ``max_addresses``:
    To and Cc addresses kept, together (``[mail] max_addresses_per_mail``); the rest are
    dropped with a defect that says how many."""
    raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw if isinstance(raw, bytes) else bytes(raw)
    defects: list[str] = [] if raw and not raw.isspace() else ["empty message"]
    limit, token = max(1, min(max_depth, _HARD_DEPTH)), b"MAILDESK-BLOB-%s-" % secrets.token_hex(8).encode()
    msg, blobs = parse_tree(raw, limit, token, defects)
    body = BodyWalk(defects, limit, token, blobs, max_text)
    plain, html = body.content(msg, "")
    html = html[:max_text] if html else html  # several HTML parts are joined: each was cut, the whole is too
    text = plain if plain is not None else html_to_text(html, defects) if html else body.tnef_text
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if body.cut:
        defects.append("cut to [mail] max_text_kept, " + ", ".join(f"{c} of {n:,} bytes" for c, n in body.cut) + f" (> {max_text:,})")
    kind = "text/plain" if plain is not None else "text/html"
    cut = max((n for c, n in body.cut if c == kind), default=0)
    if cut or len(text) > max_text:
        text = text[:max_text].rstrip("\n") + "\n\n" + CUT_NOTE.format(size=max(cut, len(text)), kept=max_text)
    charsets = tuple(body.charsets)
    headers, raw_values = _headers(msg, charsets, defects)

    def first(name: str) -> str:
        return headers.get(name, ("",))[0]

    def addresses(name: str, limit: int | None = None) -> tuple[tuple[str, str], ...]:
        return _addresses(raw_values.get(name, ()), charsets, defects, limit)

    from_list, mids, in_reply_to = addresses("from"), parse_msgids(first("message-id")), parse_msgids(first("in-reply-to"))
    cap = max(1, max_addresses)
    to, cc = _capped(addresses("to", cap), addresses("cc", cap), cap, defects)
    if first("message-id") and not mids:
        defects.append("Message-ID header without a usable id")
    parsed = InboundMessage(
        message_id=mids[0] if mids else None,
        in_reply_to=in_reply_to,
        references=parse_msgids(" ".join(headers.get("references", ()))),
        from_addr=from_list[0][1] if from_list else "",
        from_name=from_list[0][0] if from_list else "",
        to=to,
        cc=cc,
        reply_to=addresses("reply-to"),
        subject=first("subject"),
        date=_date(first("date"), defects),
        text=text,
        html=html,
        attachments=tuple(body.attachments),
        headers=headers,
        charsets=tuple(sorted(set(charsets))),
        mail_from=mail_from,
        rcpt_to=tuple(a.lower() for a in rcpt_to),
        source=source,
        queue=queue,
        delivery_report=_delivery_report(msg, in_reply_to, headers.get("x-failed-recipients", ())),
        defects=tuple(dict.fromkeys(defects)),
        size=len(raw),
        text_from_html=plain is None and bool(html),
    )
    if parsed.delivery_report is None and bounce_hint(parsed):  # the scan reads every body line: suspects only
        failures, problem = failed_recipients(raw)
        parsed = dataclasses.replace(parsed, bounce_failures=failures, defects=parsed.defects + ((problem,) if problem else ()))
    return parsed


def _headers(msg: Message, charsets: tuple[str, ...], defects: list[str]):
    out: dict[str, list[str]] = {}
    raw: dict[str, list[str]] = {}
    for name, value in msg.raw_items():  # 8-bit bytes are still surrogate escapes here
        key = CONTROL.sub("", unsurrogate(name)).strip().lower()
        out.setdefault(key, []).append(clean_header(value, charsets))
        raw.setdefault(key, []).append(str(value))
    defects.extend(f"duplicate {name} header; the first is used" for name in _SINGLE if len(out.get(name, ())) > 1)
    return {k: tuple(v) for k, v in out.items()}, raw


def normalize_address(value: str) -> str:
    """An address as maildesk stores and compares it: lower case, an IDN domain in its ASCII
    (xn--) form; "" when it is no address."""
    return _address(value)


def _address(value: str) -> str:
    addr = value.strip().strip("<>").strip()
    if not _ADDR.fullmatch(addr):
        match = _ADDR.search(addr)
        addr = match.group(0) if match else ""
    local, _, domain = addr.rpartition("@")
    domain = domain.rstrip(".").lower()
    if not domain.isascii():
        with contextlib.suppress(UnicodeError):
            domain = domain.encode("idna").decode("ascii")
    return f"{local.lower()}@{domain}" if local and domain and len(addr) <= 320 else ""


def _addresses(values, charsets: tuple[str, ...], defects: list[str], limit: int | None = None) -> tuple[tuple[str, str], ...]:
    """Split first, then decode each display name: an encoded comma cannot split an address.
    ``limit``: after that many addresses the rest are only counted (as empty pairs), not decoded."""
    result, unusable = [], 0
    for name, addr in getaddresses([CONTROL.sub(" ", unsurrogate(FOLD.sub("", v), charsets)) for v in values]):
        if limit is not None and len(result) >= limit:
            result.append(("", ""))  # counted, not decoded: _capped drops it
        elif _address(addr):
            result.append((clean_header(name, charsets)[:200], _address(addr)))
        elif addr.strip():
            unusable += 1
            if unusable <= _UNUSABLE_REPORTED:
                defects.append(f"unusable address {addr[:80]!r} ignored")
    if unusable > _UNUSABLE_REPORTED:
        defects.append(f"{unusable - _UNUSABLE_REPORTED} more unusable addresses ignored")
    return tuple(result)


def _capped(to, cc, cap: int, defects: list[str]):
    """To and Cc within ``cap`` addresses together, To first; a defect counts the rest."""
    if len(to) + len(cc) <= cap:
        return to, cc
    dropped = len(to) + len(cc) - cap
    defects.append(f"{dropped} To/Cc address(es) beyond the first {cap} ignored for threading and participants "
                   "([mail] max_addresses_per_mail)")
    return tuple(to[:cap]), tuple(cc[:max(0, cap - len(to))])


def _date(value: str, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append(f"unparseable Date header {value[:80]!r}")
        return None
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def _delivery_report(msg: Message, in_reply_to: tuple[str, ...], failed_header: tuple[str, ...]) -> DeliveryReport | None:
    parts = [p for p in (msg.get_payload() if msg.is_multipart() else ()) if isinstance(p, Message)]
    statuses = [p for p in parts if p.get_content_type() == "message/delivery-status"]
    report_type = str(msg.get_param("report-type", "")).lower()
    if msg.get_content_type() != "multipart/report" or not (statuses or report_type == "delivery-status"):
        return None
    recipients, chosen = [], None
    for block in (b for p in statuses for b in p.get_payload() if isinstance(b, Message)):
        rcpt = _address(clean_header(block.get("original-recipient") or block.get("final-recipient") or "").split(";")[-1])
        recipients += [rcpt] if rcpt else []
        action = (clean_header(block.get("action", "")).lower().split() or [""])[0]
        if (action or block.get("status")) and (chosen is None or (action == "failed" and chosen[0] != "failed")):
            chosen = (action, block)  # the first failed recipient, else the first with any status
    recipients = recipients or [a for a in map(_address, ",".join(failed_header).split(",")) if a]  # Exim
    original = next(filter(None, (_original_id(p) for p in parts if p.get_content_type() in _ORIGINAL_TYPES)), None)
    action, block = chosen or ("", Message())
    diagnostic = re.sub(r"^[\w-]+\s*;\s*", "", " ".join(clean_header(block.get("diagnostic-code", "")).split()))
    status = _STATUS.search(clean_header(block.get("status", "")) or diagnostic)
    return DeliveryReport(original or (in_reply_to[0] if in_reply_to else None), tuple(dict.fromkeys(recipients)),
                          status.group(0) if status else "", action, diagnostic)


def _original_id(part: Message) -> str | None:
    inner = part.get_payload(0) if part.is_multipart() else None
    if not isinstance(inner, Message):
        text = decode_text(part.get_payload(decode=True) or b"", ())[0]
        inner = HeaderParser(policy=compat32).parsestr(text.lstrip("\r\n"), headersonly=True)
    ids = parse_msgids(clean_header(inner.get("message-id", "")))
    return ids[0] if ids else None
