"""Bytes and header values to text, never raising: charset lookup, RFC 2047 encoded words.

Mail mislabels its charsets all the time. :func:`decode_text` tries the declared charset
(and the supersets senders really mean by it), then UTF-8 and the fallbacks; raw 8-bit
header bytes, which the email package keeps as surrogate escapes, are read as UTF-8
(RFC 6532) first. Codecs that are not text encodings, or that execute escapes, are refused.
"""

from __future__ import annotations

import binascii
import codecs
import contextlib
import re

__all__ = ["CONTROL", "FOLD", "clean_header", "codec_name", "decode_base64", "decode_text", "unsurrogate"]

FOLD = re.compile(r"\r?\n(?=[ \t])")  # a header line break followed by continuation whitespace
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_CODEC_ALIASES = {"iso-8859-8-i": "iso8859-8", "iso-8859-6-i": "iso8859-6", "windows-874": "cp874", "x-sjis": "shift_jis"}
_CODEC_TRIES = {"iso8859-1": ("cp1252", "iso8859-1"), "gb2312": ("gb2312", "gb18030"), "gbk": ("gbk", "gb18030"),
                "euc_kr": ("euc_kr", "cp949"), "shift_jis": ("shift_jis", "cp932"), "big5": ("big5", "big5hkscs"),
                "iso2022_jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2")}  # labels senders use for supersets
_UNSAFE_CODECS = {"unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode"}


def codec_name(charset: object) -> str | None:
    """Python's name for a declared charset, or None when unknown or not a safe text codec."""
    name = str(charset or "").strip().strip("\"'").lower()
    try:
        info = codecs.lookup(_CODEC_ALIASES.get(name, name))
    except (LookupError, ValueError):
        return None
    return info.name if info._is_text_encoding and info.name not in _UNSAFE_CODECS else None


def decode_text(data: bytes, charsets: tuple[str | None, ...]) -> tuple[str, bool]:
    """Bytes as text: the first charset (or its superset) that decodes them strictly, else
    UTF-8, the other charsets, cp1252, latin-1. The flag: the first charset was used."""
    first = codec_name(charsets[0]) if charsets else None
    own = _CODEC_TRIES.get(first, (first,)) if first else ()
    for name in dict.fromkeys((*own, "utf-8", *filter(None, map(codec_name, charsets[1:])), "cp1252", "iso8859-1")):
        with contextlib.suppress(LookupError, UnicodeError):
            text = data.decode(name)
            if text.isascii() or not _SURROGATE.search(text):  # utf-7 & co. can yield lone surrogates
                return text, name in own
    return data.decode("utf-8", "replace"), False


def unsurrogate(text: str, charsets: tuple[str, ...] = ()) -> str:
    """Raw header bytes decoded: 8-bit bytes (the email package keeps them as surrogate
    escapes) as UTF-8 (RFC 6532), else in the message's charsets, else cp1252; ISO-2022-JP."""
    if text.isascii():
        if "\x1b" in text:
            with contextlib.suppress(UnicodeError):
                return text.encode("ascii").decode("iso2022_jp_2")
        return text
    if not _SURROGATE.search(text):
        return text
    return decode_text(text.encode("utf-8", "surrogateescape"), ("utf-8", *charsets))[0]


def decode_base64(data: bytes) -> tuple[bytes, bool]:
    """Base64 decoded, never raising; the flag is False if the data had to be repaired."""
    pad = data.find(b"=")
    if pad >= 0 and b"\n" in data[pad:].rstrip() and data[pad:].strip(b" \t\r\n="):  # padded line by line
        parts = [decode_base64(line) for line in data.splitlines()]
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
        data = binascii.a2b_qp(raw, header=True) if m.group(2) in "qQ" else decode_base64(raw)[0]
        gap, charset = text[pos:m.start()], m.group(1).split("*", 1)[0].lower()  # utf-8*de: RFC 2231 language
        joined = pos > 0 and not gap.strip()
        if buf and (not joined or charset != buf_charset):
            out.append(decode_text(buf, (buf_charset, *charsets))[0])
            buf = b""
        out.append("" if joined else gap)
        buf, buf_charset, pos = buf + data, charset, m.end()
    out.append(decode_text(buf, (buf_charset, *charsets))[0] if buf else "")
    return "".join(out) + text[pos:]


def clean_header(value: object, charsets: tuple[str, ...] = ()) -> str:
    """A header value as one line: unfolded, raw 8-bit and RFC 2047 decoded, control
    characters made spaces. ``charsets`` are tried for raw 8-bit bytes after UTF-8."""
    if value is None:
        return ""
    text = unsurrogate(FOLD.sub("", str(value)), charsets)
    return CONTROL.sub(" ", _decode_words(text, charsets) if "=?" in text else text).strip()
