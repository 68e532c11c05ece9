"""raw bytes -> one :class:`InboundMessage`, parsed once and passed to every stage.

The MIME tree comes from the stdlib email parser (compat32, fed in chunks, nesting capped
at ``max_depth``); text, HTML, attachments and delivery reports are read from it in one
walk. HTML-only mail gets its text from inscriptis; winmail.dat is opened with tnefparse.
Nothing here raises on bad input: problems become ``defects`` and the message stays usable.
Memory: long runs of base64 lines bypass the parser's one-string-per-line buffering and are
decoded straight from ``raw``, so a big attachment costs about its decoded size once more.
"""

from __future__ import annotations

import binascii
import codecs
import contextlib
import hashlib
import mimetypes
import posixpath
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesFeedParser, BytesHeaderParser, HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from inscriptis import get_text

try:
    from tnefparse import TNEF
except ImportError:  # optional: without it winmail.dat stays one opaque attachment
    TNEF = None

__all__ = ["Attachment", "DeliveryReport", "InboundMessage", "clean_header", "parse", "parse_msgids"]

_MSGID = re.compile(r"<([^<>\s]{1,990})>")
_BARE_MSGID = re.compile(r"[^\s<>,;\"()]{1,500}@[^\s<>,;\"()]{1,489}")
_ADDR = re.compile(r"[^\s<>()\[\],;:\"]+@[^\s<>()\[\],;:\"@]+")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_CTRL = re.compile(r"[\x00-\x1f\x7f]+")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset=[\"']?([\w.:-]{1,40})", re.I)
_HEADER_START = re.compile(rb"From |[^\s:]{1,200}:")  # what a header block starts with
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:|[ \t]")  # what the stdlib accepts as a header line
_B64_RUN = re.compile(rb"^(?:[A-Za-z0-9+/]{40,998}\r?\n)++(?:[A-Za-z0-9+/]{0,998}={0,2}\r?\n)?", re.M)
_BLOB_MIN, _CHUNK, _HEAD_SCAN = 1 << 18, 1 << 16, 1 << 18
_HARD_DEPTH = 100  # max_depth is clamped to this: deeper MIME is never legitimate
_CODEC_ALIASES = {"iso-8859-8-i": "iso8859-8", "iso-8859-6-i": "iso8859-6", "windows-874": "cp874", "x-sjis": "shift_jis"}
_CODEC_TRIES = {"iso8859-1": ("cp1252", "iso8859-1"), "gb2312": ("gb2312", "gb18030"), "gbk": ("gbk", "gb18030"),
                "euc_kr": ("euc_kr", "cp949"), "shift_jis": ("shift_jis", "cp932"), "big5": ("big5", "big5hkscs"),
                "iso2022_jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2")}  # labels senders use for supersets
_UNSAFE_CODECS = {"unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode"}
_SINGLE = ("from", "sender", "to", "cc", "reply-to", "subject", "date", "message-id", "in-reply-to", "references")
_EXTENSIONS = {"message/rfc822": ".eml", "text/calendar": ".ics", "text/plain": ".txt", "text/html": ".html"}
_TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")
_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")


@dataclass(frozen=True)
class Attachment:
    filename: str  # never empty; no directory part, no control characters
    content_type: str
    data: bytes = field(repr=False)
    content_id: str = ""  # without <>, for cid: references in the HTML
    inline: bool = False

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

    def header(self, name: str, default: str = "") -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else default

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every address the mail was sent to: envelope, To and Cc, lower-cased, in order."""
        return tuple(dict.fromkeys(a.lower() for a in (*self.rcpt_to, *(a for _, a in self.to), *(a for _, a in self.cc)) if a))

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """In-Reply-To first, then References newest first: the order to try when threading."""
        return tuple(dict.fromkeys((*self.in_reply_to, *reversed(self.references))))


def _codec(charset: object) -> str | None:
    name = str(charset or "").strip().strip("\"'").lower()
    try:
        info = codecs.lookup(_CODEC_ALIASES.get(name, name))
    except (LookupError, ValueError):
        return None
    return info.name if info._is_text_encoding and info.name not in _UNSAFE_CODECS else None


def _decode(data: bytes, charsets: tuple[str | None, ...]) -> tuple[str, bool]:
    """Bytes as text: the first charset (or its superset) that decodes them strictly, else
    UTF-8, the other charsets, cp1252, latin-1. The flag: the first charset was used."""
    first = _codec(charsets[0]) if charsets else None
    own = _CODEC_TRIES.get(first, (first,)) if first else ()
    for name in dict.fromkeys((*own, "utf-8", *filter(None, map(_codec, charsets[1:])), "cp1252", "iso8859-1")):
        with contextlib.suppress(LookupError, UnicodeError):
            text = data.decode(name)
            if text.isascii() or not _SURROGATE.search(text):  # utf-7 & co. can yield lone surrogates
                return text, name in own
    return data.decode("utf-8", "replace"), False


def _unsurrogate(text: str, charsets: tuple[str, ...] = ()) -> str:
    """Raw header bytes decoded: 8-bit bytes (the email package keeps them as surrogate
    escapes) as UTF-8 (RFC 6532), else in the message's charsets, else cp1252; ISO-2022-JP."""
    if text.isascii():
        if "\x1b" in text:
            with contextlib.suppress(UnicodeError):
                return text.encode("ascii").decode("iso2022_jp_2")
        return text
    if not _SURROGATE.search(text):
        return text
    return _decode(text.encode("utf-8", "surrogateescape"), ("utf-8", *charsets))[0]


def _b64(data: bytes) -> tuple[bytes, bool]:
    """Base64 decoded, never raising; the flag is False if the data had to be repaired."""
    pad = data.find(b"=")
    if pad >= 0 and b"\n" in data[pad:].rstrip() and data[pad:].strip(b" \t\r\n="):  # padded line by line
        parts = [_b64(line) for line in data.splitlines()]
        return b"".join(p for p, _ in parts), all(ok for _, ok in parts)
    try:
        return binascii.a2b_base64(data), True
    except binascii.Error:
        clean = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        clean = clean[: len(clean) - (len(clean) % 4 == 1)]  # a lone trailing sextet carries no byte
        return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4)), False


def _decode_words(text: str, charsets: tuple[str, ...]) -> str:
    """RFC 2047: adjacent encoded words in one charset are joined as bytes before decoding (a
    character may be split across them); whitespace between encoded words is dropped."""
    out: list[str] = []
    buf, buf_charset, pos = b"", "", 0
    for m in _WORD.finditer(text):
        raw = m.group(3).encode("utf-8", "surrogateescape")
        data = binascii.a2b_qp(raw, header=True) if m.group(2) in "qQ" else _b64(raw)[0]
        gap, charset = text[pos:m.start()], m.group(1).split("*", 1)[0].lower()  # utf-8*de: RFC 2231 language
        joined = pos > 0 and not gap.strip()
        if buf and (not joined or charset != buf_charset):
            out.append(_decode(buf, (buf_charset, *charsets))[0])
            buf = b""
        out.append("" if joined else gap)
        buf, buf_charset, pos = buf + data, charset, m.end()
    out.append(_decode(buf, (buf_charset, *charsets))[0] if buf else "")
    return "".join(out) + text[pos:]


def clean_header(value: object, charsets: tuple[str, ...] = ()) -> str:
    """A header value as one line: unfolded, raw 8-bit and RFC 2047 decoded, control
    characters made spaces. ``charsets`` are tried for raw 8-bit bytes after UTF-8."""
    if value is None:
        return ""
    text = _unsurrogate(_FOLD.sub("", str(value)), charsets)
    return _CTRL.sub(" ", _decode_words(text, charsets) if "=?" in text else text).strip()


def parse_msgids(value: str) -> tuple[str, ...]:
    """All ``<id>`` tokens in a header value, in order, once each; if there are none, bare
    ``local@domain`` tokens (old mailers drop the brackets)."""
    found = _MSGID.findall(value or "") or _BARE_MSGID.findall(value or "")
    return tuple(dict.fromkeys(f"<{m}>" for m in found))


class _Part(Message):
    too_deep = False

    def get_content_type(self) -> str:  # so the parser does not descend into a too-deep part
        return "application/octet-stream" if self.too_deep else super().get_content_type()

    def get_param(self, param, failobj=None, header="content-type", unquote=True):
        try:  # the stdlib raises TypeError on some malformed RFC 2231 continuations
            return super().get_param(param, failobj, header, unquote)
        except (TypeError, ValueError, LookupError, UnicodeError):
            return failobj


class _Parser(BytesFeedParser):
    """The compat32 feed parser with a nesting limit, so hostile nesting never recurses
    deeply; parts below the limit keep their content as an opaque string."""

    def __init__(self, limit: int):
        super().__init__(_factory=_Part, policy=compat32)
        self._limit = limit

    def feed_view(self, view: memoryview) -> None:
        for offset in range(0, len(view), _CHUNK):
            self.feed(bytes(view[offset:offset + _CHUNK]))

    def _new_message(self) -> None:  # stdlib hook, present since Python 3.2
        super()._new_message()
        if len(self._msgstack) > self._limit:
            self._cur.too_deep = True


def _tree(raw: bytes, limit: int, token: bytes, defects: list[str]) -> tuple[Message, list[memoryview]]:
    """Parse ``raw``. Malformed header lines, which would end the headers early, are dropped;
    long runs of base64 lines go in as a one-line token (spliced back by _Body)."""
    view, pos, blobs, parser = memoryview(raw), 0, [], _Parser(limit)
    end = re.search(rb"\r?\n\r?\n", view[:_HEAD_SCAN])
    if end and _HEADER_START.match(view[:1000]):
        lines = bytes(view[:end.start()]).splitlines(keepends=True)
        last = max(i for i, line in enumerate(lines) if _HEADER_START.match(line))
        kept = [line for i, line in enumerate(lines) if i > last or _HEADER_LINE.match(line) or (i == 0 and line.startswith(b"From "))]
        if len(kept) < len(lines):
            defects.append(f"{len(lines) - len(kept)} malformed header line(s) ignored (no colon, or 8-bit name)")
            parser.feed(b"".join(kept))
            pos = end.start()
    try:
        for run in _B64_RUN.finditer(view, pos):
            if run.end() - run.start() >= _BLOB_MIN:
                eol = 2 if view[run.end() - 2] == 13 else 1
                parser.feed_view(view[pos:run.start()])
                parser.feed(b"%s%d-%s" % (token, len(blobs), bytes(view[run.end() - eol:run.end()])))
                blobs.append(view[run.start():run.end() - eol])
                pos = run.end()
        parser.feed_view(view[pos:])
        return parser.close(), blobs
    except Exception as exc:  # the stdlib parser is tolerant; this is the last line of defence
        defects.append(f"MIME structure unreadable ({type(exc).__name__}: {exc}); only the headers were read")
        return BytesHeaderParser(_class=_Part, policy=compat32).parsebytes(bytes(view[:_HEAD_SCAN])), []


def parse(raw: bytes, *, mail_from: str = "", rcpt_to: tuple[str, ...] = (), source: str = "",
          queue: str | None = None, max_depth: int = 20) -> InboundMessage:
    raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw if isinstance(raw, bytes) else bytes(raw)
    defects: list[str] = [] if raw and not raw.isspace() else ["empty message"]
    limit, token = max(1, min(max_depth, _HARD_DEPTH)), b"MAILDESK-BLOB-%s-" % secrets.token_hex(8).encode()
    msg, blobs = _tree(raw, limit, token, defects)
    body = _Body(defects, limit, token, blobs)
    plain, html = body.content(msg, "")
    text = plain if plain is not None else _html_text(html, defects) if html else body.tnef_text
    charsets = tuple(body.charsets)
    headers, raw_values = _headers(msg, charsets, defects)

    def first(name: str) -> str:
        return headers.get(name, ("",))[0]

    def addresses(name: str) -> tuple[tuple[str, str], ...]:
        return _addresses(raw_values.get(name, ()), charsets, defects)

    from_list, mids, in_reply_to = addresses("from"), parse_msgids(first("message-id")), parse_msgids(first("in-reply-to"))
    if first("message-id") and not mids:
        defects.append("Message-ID header without a usable id")
    return InboundMessage(
        message_id=mids[0] if mids else None,
        in_reply_to=in_reply_to,
        references=parse_msgids(" ".join(headers.get("references", ()))),
        from_addr=from_list[0][1] if from_list else "",
        from_name=from_list[0][0] if from_list else "",
        to=addresses("to"),
        cc=addresses("cc"),
        reply_to=addresses("reply-to"),
        subject=first("subject"),
        date=_date(first("date"), defects),
        text=text.replace("\r\n", "\n").replace("\r", "\n").strip("\n"),
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
    )


def _headers(msg: Message, charsets: tuple[str, ...], defects: list[str]):
    out: dict[str, list[str]] = {}
    raw: dict[str, list[str]] = {}
    for name, value in msg.raw_items():  # 8-bit bytes are still surrogate escapes here
        key = _CTRL.sub("", _unsurrogate(name)).strip().lower()
        out.setdefault(key, []).append(clean_header(value, charsets))
        raw.setdefault(key, []).append(str(value))
    defects.extend(f"duplicate {name} header; the first is used" for name in _SINGLE if len(out.get(name, ())) > 1)
    return {k: tuple(v) for k, v in out.items()}, raw


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


def _addresses(values, charsets: tuple[str, ...], defects: list[str]) -> tuple[tuple[str, str], ...]:
    """Split first, then decode each display name: an encoded comma cannot split an address."""
    result = []
    for name, addr in getaddresses([_CTRL.sub(" ", _unsurrogate(_FOLD.sub("", v), charsets)) for v in values]):
        if _address(addr):
            result.append((clean_header(name, charsets)[:200], _address(addr)))
        elif addr.strip():
            defects.append(f"unusable address {addr[:80]!r} ignored")
    return tuple(result)


def _date(value: str, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append(f"unparseable Date header {value[:80]!r}")
        return None
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def _html_text(html: str, defects: list[str]) -> str:
    try:
        return get_text(html).strip()
    except Exception as exc:  # inscriptis/lxml on hostile HTML: keep the words, lose the layout
        defects.append(f"HTML could not be converted to text: {type(exc).__name__}")
        return re.sub(r"<[^>]*>", " ", html)


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: soft line breaks (a trailing space) joined, quote depth kept."""
    lines: list[list] = []
    soft = False
    for raw in text.split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        line = raw[depth + 1:] if raw[depth:depth + 1] == " " else raw[depth:]  # undo space-stuffing
        if soft and lines[-1][0] == depth:
            lines[-1][1] += line
        else:
            lines.append([depth, line])
        soft = line.endswith(" ") and line != "-- "
        if soft and delsp:
            lines[-1][1] = lines[-1][1][:-1]
    return "\n".join(">" * d + (" " if d and s else "") + s for d, s in lines)


class _Body:
    """One walk over the MIME tree: text, HTML, attachments, charsets and defects."""

    def __init__(self, defects: list[str], limit: int, token: bytes, blobs: list[memoryview]):
        self.defects, self.limit, self.blobs = defects, limit, blobs
        self.token = re.compile(re.escape(token) + rb"(\d+)-")
        self.attachments: list[Attachment] = []
        self.charsets: list[str] = []
        self.tnef_text, self.too_deep = "", False

    def content(self, part: Message, path: str) -> tuple[str | None, str | None]:
        """(plain, html) of a subtree; ``plain`` is None when the subtree has no plain text."""
        ctype, charset = part.get_content_type(), part.get_content_charset()
        if charset and charset not in self.charsets:
            self.charsets.append(charset)
        try:
            return self._content(part, ctype, path)
        except Exception as exc:  # one unreadable part must not lose the rest of the message
            self.defects.append(f"part {path or 0} ({ctype}) unreadable: {type(exc).__name__}: {exc}")
            return None, None
        finally:
            self.defects.extend(f"{type(d).__name__} in {ctype}" + (f" (part {path})" if path else "") for d in part.defects)

    def _content(self, part: Message, ctype: str, path: str) -> tuple[str | None, str | None]:
        if getattr(part, "too_deep", False):
            if not self.too_deep:
                self.defects.append(f"MIME nesting deeper than {self.limit} levels; the deeper parts were not read")
            self.too_deep = True
            return None, None
        children = part.get_payload()
        if ctype.startswith("multipart/") and isinstance(children, str):
            children = _guess_multipart(ctype, self._payload(part), self.limit - path.count(".") - 1)
            ctype = ctype if children else "text/plain"  # unguessable: read the body as text
            self.defects.append("multipart boundary missing or wrong; " + ("guessed it" if children else "read as text"))
        if isinstance(children, list) and ctype.startswith("multipart/"):
            results = [self.content(c, f"{path}.{i}".lstrip(".")) for i, c in enumerate(children, 1) if isinstance(c, Message)]
            if ctype == "multipart/alternative":  # the last alternative is the preferred one
                return (next((p for p, _ in reversed(results) if p is not None), None),
                        next((h for _, h in reversed(results) if h is not None), None))
            html = "\n".join(h for _, h in results if h) or None
            if all(p is None for p, _ in results):
                return None, html  # converted once, at the top, if nothing has plain text
            texts = [p if p is not None else _html_text(h, self.defects) for p, h in results if p is not None or h]
            return "\n\n".join(t.rstrip("\n") for t in texts), html
        disposition = part.get_content_disposition()
        if ctype in ("text/plain", "text/html") and (disposition == "inline" or not (disposition or part.get_filename())):
            return self._text(part, ctype)
        if ctype != "message/delivery-status":
            self._attachment(part, ctype)
        return None, None

    def _payload(self, part: Message) -> bytes:
        """A leaf's content, transfer encoding undone (big base64 straight from the raw bytes)."""
        payload = part.get_payload()  # exact for ASCII; 8-bit content needs decode=True
        if not isinstance(payload, str):
            return b""
        if str(part.get("content-transfer-encoding", "")).strip().lower() != "base64":
            data = part.get_payload(decode=True) or b""
            return self._splice(data) if self.blobs else data
        raw = payload.encode("utf-8", "surrogateescape")
        whole = self.token.fullmatch(raw.strip()) if self.blobs else None
        if whole:
            with contextlib.suppress(binascii.Error):
                return binascii.a2b_base64(self.blobs[int(whole.group(1))])
        data, ok = _b64(self._splice(raw) if self.blobs else raw)
        if not ok:
            self.defects.append(f"invalid base64 in a {part.get_content_type()} part; decoded what could be")
        return data

    def _splice(self, data: bytes) -> bytes:
        pieces, pos = [], 0
        for m in self.token.finditer(data):
            pieces += [data[pos:m.start()], self.blobs[int(m.group(1))]]
            pos = m.end()
        return b"".join([*pieces, data[pos:]]) if pieces else data

    def _text(self, part: Message, ctype: str) -> tuple[str | None, str | None]:
        data = self._payload(part)
        declared = part.get_content_charset()
        if not declared and ctype == "text/html":
            meta = _META_CHARSET.search(data[:4096])
            declared = meta.group(1).decode("ascii").lower() if meta else None
        text, used = _decode(data, (declared or "utf-8", *self.charsets))
        if declared and not used:
            problem = "is unknown" if _codec(declared) is None else "does not match the bytes"
            self.defects.append(f"{ctype} charset {declared!r} {problem}; decoded as best possible")
        if "\x00" in text:
            self.defects.append("NUL characters removed from the text")
            text = text.replace("\x00", "")
        text = text.replace("\r\n", "\n")
        if not text.strip():
            return None, None
        if ctype == "text/html":
            return None, text
        if str(part.get_param("format", "")).lower() == "flowed":
            text = _unflow(text, str(part.get_param("delsp", "")).lower() == "yes")
        return text, None

    def _attachment(self, part: Message, ctype: str) -> None:
        inner = part.get_payload(0) if ctype.startswith("message/") and part.is_multipart() else None
        data = self._payload(part) if not isinstance(inner, Message) else None
        if data is None:  # a forwarded mail: kept whole, as .eml
            try:
                data = self._splice(inner.as_bytes(policy=compat32.clone(max_line_length=0)))
            except (UnicodeError, LookupError) as exc:  # the stdlib generator fails on some broken 8-bit parts
                self.defects.append(f"forwarded message could not be written back ({type(exc).__name__}); kept its headers only")
                data = b"".join(f"{k}: {v}\n".encode("utf-8", "surrogateescape") for k, v in inner.raw_items())
        name = _filename(part, ctype, len(self.attachments) + 1)
        if (ctype in _TNEF_TYPES or name.lower() == "winmail.dat") and self._tnef(data):
            return
        cid = clean_header(part.get("content-id", "")).strip("<> ")
        self.attachments.append(Attachment(name, ctype[:200], data, cid, part.get_content_disposition() == "inline"))

    def _tnef(self, data: bytes) -> bool:
        """Replace winmail.dat by the files in it; its body is the text if the mail has none."""
        if TNEF is None:
            self.defects.append("winmail.dat kept unopened: tnefparse is not installed")
            return False
        try:
            tnef = TNEF(data, do_checksum=False)
        except Exception as exc:  # tnefparse fails in many ways on hostile input
            self.defects.append(f"winmail.dat could not be opened ({type(exc).__name__}); kept as is")
            return False
        codepage = tnef.codepage or "cp1252"
        for i, att in enumerate(tnef.attachments, 1):
            try:
                name = att.long_filename()
            except UnicodeError:  # a title in the sender's code page, not UTF-8
                name = getattr(att, "_name", b"")
            name = _safe_name(name if isinstance(name, str) else _decode(name, (codepage,))[0]) or f"winmail-{i}.bin"
            self.attachments.append(Attachment(name, mimetypes.guess_type(name)[0] or "application/octet-stream", bytes(att.data)))
        body, html = tnef.body, tnef.htmlbody
        body = _decode(body, (codepage,))[0] if isinstance(body, bytes) else body
        if not body and html:
            body = _html_text(html if isinstance(html, str) else _decode(html, ())[0], self.defects)
        self.tnef_text = self.tnef_text or (body or "").replace("\x00", "").strip()
        if not (tnef.attachments or body):
            self.defects.append("winmail.dat holds no files and no plain or HTML text; kept as is")
        return bool(tnef.attachments or body)


def _guess_multipart(ctype: str, body: bytes, limit: int) -> list[Message] | None:
    """The parts of a multipart body whose boundary is missing or wrong, split at its first
    ``--token`` line."""
    match = re.search(rb"^--([^\s\"]{1,200}?)(?:--)?[ \t]*\r?$", body[:_HEAD_SCAN], re.M)
    if match is None or limit < 1:
        return None
    parser = _Parser(limit)
    parser.feed(b'Content-Type: %s; boundary="%s"\n\n' % (ctype.encode(), match.group(1)))
    parser.feed(body)
    children = parser.close().get_payload()
    return children if isinstance(children, list) else None


def _safe_name(name: str) -> str:
    name = posixpath.basename(_BIDI.sub("", _CTRL.sub(" ", name)).replace("\\", "/").rstrip("/")).strip(" .")
    stem, ext = posixpath.splitext(name)
    return name if len(name) <= 255 else stem[: 255 - len(ext[:20])] + ext[:20]


def _filename(part: Message, ctype: str, index: int) -> str:
    view = part
    if not all(v.isascii() for k, v in part.raw_items() if k.lower() in ("content-type", "content-disposition")):
        view = _Part()  # raw 8-bit parameters: the stdlib would turn them into U+FFFD
        for key, value in part.raw_items():
            if key.lower() in ("content-type", "content-disposition"):
                view[key] = _unsurrogate(str(value), (part.get_content_charset() or "utf-8",))
    if name := _safe_name(clean_header(view.get_filename() or "")):
        return name
    if ctype in _TNEF_TYPES:
        return "winmail.dat"
    return f"part-{index}{_EXTENSIONS.get(ctype) or mimetypes.guess_extension(ctype) or '.bin'}"


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
        text = _decode(part.get_payload(decode=True) or b"", ())[0]
        inner = HeaderParser(policy=compat32).parsestr(text.lstrip("\r\n"), headersonly=True)
    ids = parse_msgids(clean_header(inner.get("message-id", "")))
    return ids[0] if ids else None
