"""aiosmtpd's protocol with DATA read in blocks and plain addresses parsed by one regex.

Stock aiosmtpd reads DATA one line at a time (an await and a log call per line) and parses
every MAIL FROM / RCPT TO address with the email package's full RFC 5322 parser (it even
defines a class per call). Together that is most of a do-nothing aiosmtpd server's CPU
time. :class:`FastData` overrides exactly those two steps, with the same results:

* DATA is read in blocks of up to 64 KiB and searched for ``CRLF.CRLF``; what the client
  pipelined after the final dot goes back into the reader. Dots are unstuffed, and the
  answers to a message over the SIZE limit (552) or with a line over 1000 octets (500) are
  the stock ones (whichever limit the stream broke first), sent once the whole message
  has been read. Unlike stock aiosmtpd, every block received restarts the idle timeout, so
  a slow client that keeps sending is not dropped in the middle of a message.
* ``<local@domain>`` made of dot-atoms is taken as it is; anything else (quoted local
  parts, source routes, address literals, ``<>``, comments, encoded words, non-ASCII) goes to aiosmtpd's parser.
"""

from __future__ import annotations

import asyncio
import re

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, syntax

__all__ = ["FastData", "FastLMTP", "FastSMTP", "read_data"]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(rf"\s*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>\s*(.*)", re.S)
_END = b"\r\n.\r\n"
_BLOCK = 65536


async def read_data(reader: asyncio.StreamReader, limit: int | None, line_limit: int, on_block=None) -> bytes | str:
    """The message after ``354``, unstuffed, or the error reply when it broke a limit."""
    buf = bytearray()
    scanned = 0  # no terminator starts before this offset
    too_much = too_long = False
    while True:
        if not too_much and buf[:3] == b".\r\n":  # an empty message
            end, rest = 0, buf[3:]
            break
        found = buf.find(_END, max(0, scanned - 4))
        if found >= 0:
            end, rest = found + 2, buf[found + 5:]
            break
        scanned = len(buf)
        if too_much:
            del buf[:-4]
            scanned = len(buf)
        elif limit and len(buf) > limit + 4:
            too_long = _too_long(buf, limit, line_limit)
            too_much = True  # keep reading to the end, keep nothing but a possible start of the terminator
            del buf[:-4]
            scanned = len(buf)
        block = await reader.read(_BLOCK)
        if not block:
            raise ConnectionResetError("connection closed during DATA")
        if on_block is not None:
            on_block()
        buf += block
    if rest:
        reader._buffer[:0] = rest  # pipelined commands after the dot: aiosmtpd reads them next
    del buf[end:]
    if too_long or (not too_much and _too_long(buf, limit, line_limit)):
        return "500 Line too long (see RFC5321 4.5.3.1.6)"
    if too_much or (limit and end > limit):
        return "552 Error: Too much mail data"
    if buf[:1] == b".":
        del buf[:1]
    return bytes(buf.replace(b"\r\n.", b"\r\n")) if b"\r\n." in buf else bytes(buf)


def _too_long(data: bytearray, limit: int | None, line_limit: int) -> bool:
    """Whether a line breaks ``line_limit`` before the message breaks ``limit`` (stock aiosmtpd
    answers for whichever limit the stream broke first)."""
    return _longest_line(data[:limit] if limit and len(data) > limit else data) + 2 > line_limit


def _longest_line(data: bytearray) -> int:
    if len(data) < 999:
        return len(data)
    longest, pos, find = 0, 0, data.find
    while True:
        nxt = find(b"\r\n", pos)
        if nxt < 0:
            return max(longest, len(data) - pos)
        longest = max(longest, nxt - pos)
        pos = nxt + 2


class FastData:
    """Mixed into aiosmtpd's SMTP or LMTP class (before it)."""

    def _getaddr(self, arg: str):
        # comments, encoded words and anything not ASCII: the email package's full parser
        simple = arg and arg.isascii() and "(" not in arg and "=?" not in arg
        plain = _PLAIN.fullmatch(arg) if simple else None
        if plain is None:
            return super()._getaddr(arg)
        addr = plain.group(1)
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, plain.group(2)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            data = await read_data(self._reader, self.data_size_limit, self.line_length_limit, self._reset_timeout)
        except asyncio.CancelledError:  # the connection went away during DATA
            self._writer.close()
            raise
        except ConnectionResetError:
            self._writer.close()
            return
        if isinstance(data, str):
            await self.push(data)
            self._set_post_data_state()
            return
        self.envelope.original_content = data
        self.envelope.content = data.decode("utf-8", errors="surrogateescape") if self._decode_data else data
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class FastSMTP(FastData, SMTP):
    pass


class FastLMTP(FastData, LMTP):
    pass
