"""Building test messages and sending them over SMTP.

:func:`make_mail` builds an ordinary :class:`~email.message.EmailMessage` and :func:`send`
hands it to a server. The other builders write raw messages byte by byte, so tests control
every header, charset and transfer encoding and can break any of them on purpose. Header
values given as ``str`` go out as raw UTF-8 (RFC 6532); ``bytes`` go out exactly as given
(a legacy charset, garbage); use :func:`encoded_word` for RFC 2047. Every message here is
made up for the tests.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import smtplib
import struct
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import quote

__all__ = ["Part", "attachment", "encoded_word", "encoded_words", "forwarded", "make_mail", "message", "multipart", "raw_part",
           "send", "text", "tnef"]

Header = tuple[str, "str | bytes"]


def make_mail(*, subject: str = "Printer on fire", body: str = "My printer is on fire.", sender: str = "Jane Customer <jane@customer.test>",
              to: str = "support@example.test", cc: str | None = None, message_id: str | None = None,
              in_reply_to: str | None = None, references: str | None = None, headers: dict | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="customer.test")
    msg["Date"] = "Mon, 23 Nov 2026 09:00:00 +0000"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def send(port: int, msg: EmailMessage, *, mail_from: str | None = None, rcpt: list[str] | None = None) -> dict:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        return smtp.send_message(msg, from_addr=mail_from, to_addrs=rcpt)


def encoded_word(text: str, charset: str = "utf-8", kind: str = "B") -> str:
    """One RFC 2047 encoded word."""
    data = text.encode(charset)
    if kind.upper() == "B":
        payload = base64.b64encode(data).decode("ascii")
    else:
        payload = "".join(chr(b) if b < 128 and chr(b).isalnum() else "_" if b == 0x20 else f"={b:02X}" for b in data)
    return f"=?{charset}?{kind}?{payload}?="


def encoded_words(text: str, charset: str = "utf-8", kind: str = "B", size: int = 9, sep: str = "\r\n ") -> str:
    """``text`` as several encoded words of ``size`` bytes each, joined by ``sep`` (folded by
    default). The split is by bytes, so a multi-byte character may be cut in two."""
    data = text.encode(charset)
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    if kind.upper() == "B":
        words = [f"=?{charset}?B?{base64.b64encode(c).decode('ascii')}?=" for c in chunks]
    else:
        words = [f"=?{charset}?Q?{''.join(chr(b) if b < 128 and chr(b).isalnum() else f'={b:02X}' for b in c)}?=" for c in chunks]
    return sep.join(words)


def _header_bytes(name: str, value: str | bytes) -> bytes:
    return name.encode("ascii") + b": " + (value if isinstance(value, bytes) else value.encode("utf-8"))


@dataclass
class Part:
    headers: list[Header] = field(default_factory=list)
    body: bytes = b""
    exact: bool = False  # body bytes go out as they are (binary, or already rendered)

    def render(self, eol: bytes = b"\r\n") -> bytes:
        head = b"".join(_header_bytes(n, v).replace(b"\r\n", b"\n").replace(b"\n", eol) + eol for n, v in self.headers)
        return head + eol + (self.body if self.exact else self.body.replace(b"\r\n", b"\n").replace(b"\n", eol))


def _transfer(data: bytes, cte: str, binary: bool = False) -> bytes:
    if cte == "base64":
        return base64.encodebytes(data)
    if cte == "quoted-printable":  # a file's line breaks are data (=0D=0A), a text's are line breaks
        return binascii.b2a_qp(data, istext=not binary) if binary else quopri.encodestring(data)
    return data


def raw_part(headers: list[Header], body: bytes) -> Part:
    """A part whose body goes out exactly as given."""
    return Part(list(headers), body, exact=True)


def text(body: str, subtype: str = "plain", charset: str | None = "utf-8", cte: str = "8bit", params: str = "",
         headers: tuple[Header, ...] = ()) -> Part:
    """A text part: ``body`` encoded in ``charset`` and then in ``cte``."""
    ctype = f"text/{subtype}" + (f"; charset={charset}" if charset else "") + (f"; {params}" if params else "")
    data = body.encode(charset or "utf-8")
    return Part([("Content-Type", ctype), ("Content-Transfer-Encoding", cte), *headers], _transfer(data, cte))


def attachment(data: bytes, filename: str | None = None, ctype: str = "application/octet-stream", cte: str = "base64",
               disposition: str | None = "attachment", style: str = "plain", content_id: str | None = None,
               headers: tuple[Header, ...] = ()) -> Part:
    """A file part. ``style`` says how the filename is written: plain (raw, UTF-8 if not ASCII),
    rfc2231 (filename*=utf-8''...), rfc2231-split (filename*0*=...; filename*1*=...), rfc2047
    (an encoded word inside the quotes, as some clients do) or name (only Content-Type name=)."""
    params = ""
    if filename is not None:
        if style == "rfc2231":
            params = f"filename*=utf-8''{quote(filename, safe='')}"
        elif style == "rfc2231-split":
            encoded = quote(filename, safe="")
            half = encoded.rfind("%", 0, len(encoded) // 2 + 1)  # never inside a %XX escape
            half = half if half > 0 else len(encoded) // 2
            params = f"filename*0*=utf-8''{encoded[:half]};\r\n filename*1*={encoded[half:]}"
        elif style == "rfc2047":
            params = f'filename="{encoded_word(filename)}"'
        else:
            params = f'filename="{filename}"'
    type_line = ctype + (f'; name="{filename}"' if style == "name" and filename else "")
    hdrs: list[Header] = [("Content-Type", type_line)]
    if disposition:
        hdrs.append(("Content-Disposition", disposition + (f"; {params}" if params and style != "name" else "")))
    if content_id:
        hdrs.append(("Content-ID", f"<{content_id}>"))
    hdrs.append(("Content-Transfer-Encoding", cte))
    return Part([*hdrs, *headers], _transfer(data, cte, binary=True), exact=cte in ("8bit", "binary"))


def multipart(subtype: str, *parts: Part, boundary: str | None = None, params: str = "",
              headers: tuple[Header, ...] = (), close: bool = True, eol: bytes = b"\r\n") -> Part:
    """A multipart; ``close=False`` leaves out the closing boundary."""
    boundary = boundary or f"=_{subtype}_{id(parts) % 100000:05d}_="
    body = b"".join(b"--" + boundary.encode() + eol + p.render(eol) + eol for p in parts)
    body += (b"--" + boundary.encode() + b"--" + eol) if close else b""
    ctype = f'multipart/{subtype}; boundary="{boundary}"' + (f"; {params}" if params else "")
    return Part([("Content-Type", ctype), *headers], body, exact=True)


def forwarded(raw: bytes, ctype: str = "message/rfc822", headers: tuple[Header, ...] = ()) -> Part:
    """A mail (or its headers, with ctype text/rfc822-headers) as a part."""
    return Part([("Content-Type", ctype), *headers], raw)


def message(body: Part | None = None, *, subject: str | bytes | None = "Test message",
            sender: str | bytes | None = "Alice Customer <alice@example.com>", to: str | bytes | None = "support@example.org",
            message_id: str | None = "<test-1@client.example.com>", date: str | None = "Tue, 04 Mar 2025 10:15:00 +0100",
            headers: tuple[Header, ...] = (), eol: bytes = b"\r\n", mime: bool = True) -> bytes:
    """A whole message; ``body`` defaults to a short UTF-8 text part."""
    body = body if body is not None else text("Hello support,\nmy printer does not print.\n")
    top: list[Header] = []
    for name, value in (("From", sender), ("To", to), ("Subject", subject), ("Date", date), ("Message-ID", message_id)):
        if value is not None:
            top.append((name, value))
    top += [*headers, *([("MIME-Version", "1.0")] if mime else [])]
    return Part([*top, *body.headers], body.body, body.exact).render(eol)


def _tnef_attr(level: int, kind: int, name: int, data: bytes) -> bytes:
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def _mapi(props: list[tuple[int, int, bytes]]) -> bytes:
    """MAPI properties (type, id, value) of variable-length types (string, unicode, binary)."""
    out = struct.pack("<I", len(props))
    for kind, prop, value in props:
        out += struct.pack("<HHII", kind, prop, 1, len(value)) + value + b"\0" * (-len(value) % 4)
    return out


def tnef(body: str | None = None, files: tuple[tuple[str, bytes], ...] = (), html: str | None = None,
         codepage: int = 1252) -> bytes:
    """A minimal TNEF stream (winmail.dat), written here field by field after MS-OXTNEF: a
    plain body (attBody), an HTML body (PR_BODY_HTML), and files with a short title in the
    code page and the long name as Unicode (PR_ATTACH_LONG_FILENAME)."""
    cp = f"cp{codepage}"
    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += _tnef_attr(1, 0x0008, 0x9006, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += _tnef_attr(1, 0x0006, 0x9007, struct.pack("<II", codepage, 0))  # attOemCodepage
    out += _tnef_attr(1, 0x0007, 0x8008, b"IPM.Microsoft Mail.Note\0")  # attMessageClass
    if body is not None:
        out += _tnef_attr(1, 0x0002, 0x800C, body.encode(cp) + b"\0")  # attBody
    if html is not None:
        out += _tnef_attr(1, 0x0006, 0x9003, _mapi([(0x0102, 0x1013, html.encode("utf-8"))]))  # attMAPIProps
    for name, data in files:
        short = name.encode(cp, "replace")[:12]
        out += _tnef_attr(2, 0x0006, 0x9002, bytes(14))  # attAttachRendData: starts an attachment
        out += _tnef_attr(2, 0x0001, 0x8010, short + b"\0")  # attAttachTitle
        out += _tnef_attr(2, 0x0006, 0x800F, data)  # attAttachData
        out += _tnef_attr(2, 0x0006, 0x9005, _mapi([(0x001F, 0x3707, name.encode("utf-16-le") + b"\0\0")]))
    return out
