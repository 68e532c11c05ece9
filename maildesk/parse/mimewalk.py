"""The MIME tree of a raw mail and one walk over it: text, HTML, attachments, winmail.dat.

:func:`parse_tree` runs the stdlib email parser (compat32, fed in chunks, nesting capped at
``limit``); :class:`BodyWalk` reads the plain text, HTML and :class:`Attachment` s from the
tree in one pass. HTML-only mail gets its text from inscriptis; winmail.dat is opened with
tnefparse. Nothing here raises on bad input: problems are appended to ``defects``.
Memory: long runs of base64 lines, and of body text, bypass the parser's one-string-per-line
buffering and are decoded straight from ``raw``, so a big attachment costs about its decoded
size once more; of a text part only the first ``max_text`` bytes are ever decoded.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import mimetypes
import posixpath
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesFeedParser, BytesHeaderParser
from email.policy import compat32

from inscriptis import get_text

from maildesk.parse.charsets import CONTROL, clean_header, codec_name, decode_base64, decode_text, unsurrogate

try:
    from tnefparse import TNEF
except ImportError:  # optional: without it winmail.dat stays one opaque attachment
    TNEF = None

__all__ = ["Attachment", "BodyWalk", "html_to_text", "parse_tree"]

_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset=[\"']?([\w.:-]{1,40})", re.I)
_HEADER_START = re.compile(rb"From |[^\s:]{1,200}:")  # what a header block starts with
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:|[ \t]")  # what the stdlib accepts as a header line
_B64_RUN = re.compile(rb"^(?:[A-Za-z0-9+/]{40,998}\r?\n)++(?:[A-Za-z0-9+/]{0,998}={0,2}\r?\n)?", re.M)
# A run of body lines at the start of a paragraph, until a boundary-like line ("-") or a blank line
# before a header-like one (a nested message's headers): big text goes past the parser the same way.
_TEXT_RUN = rb"(?:(?<=\n\n)|(?<=\n\r\n))(?![\x21-\x39\x3b-\x7e]+:|From )(?:[^\r\n-][^\n]*\n|(?:\r?\n)++(?![\x21-\x39\x3b-\x7e]+:|From )(?=[^\r\n-]))++"
_RUNS = re.compile(_B64_RUN.pattern + b"|" + _TEXT_RUN, re.M)
_BLOB_MIN, _CHUNK, _HEAD_SCAN = 1 << 18, 1 << 16, 1 << 18
_EXTENSIONS = {"message/rfc822": ".eml", "text/calendar": ".ics", "text/plain": ".txt", "text/html": ".html"}
_TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")


@dataclass(frozen=True)
class Attachment:
    """One file of a mail: a part that is not body text (a forwarded mail kept whole), or a file from winmail.dat."""

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


def parse_tree(raw: bytes, limit: int, token: bytes, defects: list[str]) -> tuple[Message, list[memoryview]]:
    """Parse ``raw``. Malformed header lines, which would end the headers early, are dropped;
    long runs of base64 lines, and of body text, go in as a one-line token (spliced back by BodyWalk)."""
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
        for run in (_RUNS if len(view) > _BLOB_MIN else _B64_RUN).finditer(view, pos):
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


def html_to_text(html: str, defects: list[str]) -> str:
    """HTML as plain text (inscriptis); on failure the tags are stripped and a defect noted."""
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


class BodyWalk:
    """One walk over the MIME tree: text, HTML, attachments, charsets and defects."""

    def __init__(self, defects: list[str], limit: int, token: bytes, blobs: list[memoryview], max_text: int = 1 << 20):
        self.defects, self.limit, self.blobs, self.max_text = defects, limit, blobs, max_text
        self.cut: list[tuple[str, int]] = []  # (content type, bytes) of each text part cut to max_text
        self.token = re.compile(re.escape(token) + rb"(\d+)-") if blobs else None
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
            texts = [p if p is not None else html_to_text(h, self.defects) for p, h in results if p is not None or h]
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
        data, ok = decode_base64(self._splice(raw) if self.blobs else raw)
        if not ok:
            self.defects.append(f"invalid base64 in a {part.get_content_type()} part; decoded what could be")
        return data

    def _splice(self, data: bytes, limit: int | None = None) -> bytes:
        """``data`` with its tokens replaced by the runs they stand for; the first ``limit`` bytes only, if given."""
        if self.token is None:
            return data
        pieces, pos, size = [], 0, 0
        for m in self.token.finditer(data):
            blob = self.blobs[int(m.group(1))]
            pieces += [data[pos:m.start()], blob if limit is None else blob[:max(0, limit - size - (m.start() - pos))]]
            size += m.start() - pos + len(blob)
            pos = m.end()
            if limit is not None and size >= limit:
                return b"".join(pieces)[:limit]
        if not pieces:
            return data if limit is None else data[:limit]
        whole = b"".join([*pieces, data[pos:]])
        return whole if limit is None else whole[:limit]

    def _text_payload(self, part: Message) -> tuple[bytes, int]:
        """A text part's content, transfer encoding undone, and its size. Of a body over
        ``max_text`` bytes only about that much is read and decoded (the size is then the
        encoded one): a huge text never exists whole in memory."""
        payload = part.get_payload()
        if self.token is None or not isinstance(payload, str):
            data = self._payload(part)
            return data, len(data)
        encoded = payload.encode("utf-8", "surrogateescape")
        size = len(encoded) + sum(len(self.blobs[int(m.group(1))]) - len(m.group(0)) for m in self.token.finditer(encoded))
        if size <= self.max_text:
            data = self._payload(part)
            return data, len(data)
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()
        head = self._splice(encoded, self.max_text * {"base64": 4, "quoted-printable": 3}.get(cte, 1) + 4096)
        if cte == "base64":
            return decode_base64(head[:head.rfind(b"\n") + 1] or head)[0], size
        if cte == "quoted-printable":
            return binascii.a2b_qp(head[:head.rfind(b"\n") + 1] or head), size
        return head, size

    def _text(self, part: Message, ctype: str) -> tuple[str | None, str | None]:
        data, size = self._text_payload(part)
        declared = part.get_content_charset()
        if not declared and ctype == "text/html":
            meta = _META_CHARSET.search(data[:4096])
            declared = meta.group(1).decode("ascii").lower() if meta else None
        if size > self.max_text:
            self.cut.append((ctype, size))
            text, used = _decode_cut(data, self.max_text, (declared or "utf-8", *self.charsets))
        else:
            text, used = decode_text(data, (declared or "utf-8", *self.charsets))
        del data
        if declared and not used:
            problem = "is unknown" if codec_name(declared) is None else "does not match the bytes"
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
            name = _safe_name(name if isinstance(name, str) else decode_text(name, (codepage,))[0]) or f"winmail-{i}.bin"
            self.attachments.append(Attachment(name, mimetypes.guess_type(name)[0] or "application/octet-stream", bytes(att.data)))
        body, html = tnef.body, tnef.htmlbody
        body = decode_text(body, (codepage,))[0] if isinstance(body, bytes) else body
        if not body and html:
            body = html_to_text(html if isinstance(html, str) else decode_text(html, ())[0], self.defects)
        self.tnef_text = self.tnef_text or (body or "").replace("\x00", "").strip()
        if not (tnef.attachments or body):
            self.defects.append("winmail.dat holds no files and no plain or HTML text; kept as is")
        return bool(tnef.attachments or body)


def _decode_cut(data: bytes, limit: int, charsets: tuple[str | None, ...]) -> tuple[str, bool]:
    """The first ``limit`` bytes of ``data`` as text. The cut may fall inside a multi-byte
    character: a few bytes fewer are tried until the declared charset decodes them."""
    head = None
    for end in range(limit, max(0, limit - 8), -1):
        head = decode_text(data[:end], charsets)
        if head[1]:
            return head
    return head or decode_text(data[:limit], charsets)


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
    name = posixpath.basename(_BIDI.sub("", CONTROL.sub(" ", name)).replace("\\", "/").rstrip("/")).strip(" .")
    stem, ext = posixpath.splitext(name)
    return name if len(name) <= 255 else stem[: 255 - len(ext[:20])] + ext[:20]


def _filename(part: Message, ctype: str, index: int) -> str:
    view = part
    if not all(v.isascii() for k, v in part.raw_items() if k.lower() in ("content-type", "content-disposition")):
        view = _Part()  # raw 8-bit parameters: the stdlib would turn them into U+FFFD
        for key, value in part.raw_items():
            if key.lower() in ("content-type", "content-disposition"):
                view[key] = unsurrogate(str(value), (part.get_content_charset() or "utf-8",))
    if name := _safe_name(clean_header(view.get_filename() or "")):
        return name
    if ctype in _TNEF_TYPES:
        return "winmail.dat"
    return f"part-{index}{_EXTENSIONS.get(ctype) or mimetypes.guess_extension(ctype) or '.bin'}"

