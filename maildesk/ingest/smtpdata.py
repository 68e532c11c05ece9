"""aiosmtpd's protocol with DATA read in blocks, bare LF normalized, and time limits per session.

Stock aiosmtpd reads DATA one line at a time (an await and a log call per line) and parses
every MAIL FROM / RCPT TO address with the email package's full RFC 5322 parser (it even
defines a class per call). Together that is most of a do-nothing aiosmtpd server's CPU
time. :class:`FastData` overrides those steps:

* DATA is read in blocks of up to 64 KiB and searched for ``CRLF.CRLF``, the only end of
  the message (as Postfix's ``smtpd_forbid_bare_newline = normalize``): ``LF.LF``,
  ``CRLF.LF`` or ``LF.CRLF`` inside DATA are message text, so nothing can be smuggled past
  the end of one message into the SMTP dialogue. What the client pipelined after the final
  dot goes back into the reader.
* Lines may end in a bare LF (``smtplib.sendmail(..., msg.as_bytes())`` sends that): each
  one is stored as CRLF, and the transparency dot is removed from every line, LF or CRLF
  ended. A bare CR is message text and stays as it is.
* A line may be up to ``max_line_length`` octets (its line ending not counted; RFC 5321
  asks for 998, MTAs accept far more). Longer: ``500 5.6.0 Line too long ...`` naming the
  limit; over the SIZE limit: the stock ``552``. Whichever limit the stream broke first
  answers, once the whole message has been read; from then on nothing more is kept.
* Time: every block received restarts the idle timer (``timeout``), but DATA as a whole
  gets at most ``data_timeout`` seconds and, after ``data_rate_grace`` seconds, must have
  arrived at ``min_data_rate`` bytes per second on average; the whole session gets at most
  ``session_timeout`` seconds. Each limit answers ``421 4.4.2`` naming it, then closes
  (a session over its time while its message is being stored gets its reply first).
* The message is handed over (``envelope.original_content``) as the bytearray it was read
  into when nothing in it had to change (no bare LF, no transparency dot), not as a copy:
  a 25 MB mail is held once, not twice.
* ``<local@domain>`` made of dot-atoms is taken as it is; anything else (quoted local
  parts, source routes, address literals, ``<>``, comments, encoded words, non-ASCII) goes to aiosmtpd's parser.
"""

from __future__ import annotations

import asyncio
import logging
import re

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, syntax

__all__ = ["DEFAULT_LINE_LENGTH", "DataTooSlow", "FastData", "FastLMTP", "FastSMTP", "read_data"]

log = logging.getLogger("maildesk.ingest")

DEFAULT_LINE_LENGTH = 65536
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(rf"\s*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>\s*(.*)", re.S)
_END = b"\r\n.\r\n"
_BLOCK = 65536
_BARE_LF = re.compile(rb"(?<!\r)\n")


class DataTooSlow(Exception):
    """Raised by a DATA block callback to end a message that arrives too slowly (the text is the reply)."""


class _LineWatch:
    """Where in the stream a line first grew past ``limit`` octets (its CRLF or LF not counted).

    Fed block by block; ``over_at`` is the stream offset of the first octet past the limit."""

    __slots__ = ("cr", "limit", "offset", "over_at", "run")

    def __init__(self, limit: int):
        self.limit, self.offset, self.run, self.cr = limit, 0, 0, False
        self.over_at: int | None = None

    def feed(self, block: bytes | bytearray) -> None:
        if self.over_at is not None or not block:
            return
        if self.run + len(block) > self.limit:  # a line in here may be too long
            parts = block.split(b"\n")
            if self.run + len(parts[0]) > self.limit or max(map(len, parts)) > self.limit:
                self._scan(parts, block)
                if self.over_at is not None:
                    return
        nl = block.rfind(b"\n")
        self.run = self.run + len(block) if nl < 0 else len(block) - nl - 1
        self.offset += len(block)
        self.cr = block[-1:] == b"\r"

    def _scan(self, parts: list, block) -> None:
        start, last = self.offset - self.run, len(parts) - 1
        for i, part in enumerate(parts):
            total = len(part) + (self.run if i == 0 else 0)
            if total > self.limit:
                if i < last:  # a whole line: a CR right before its LF is its line ending
                    over = total - (part.endswith(b"\r") if part else self.cr) > self.limit
                else:  # the line goes on in the next block: a CR at the very end may yet be one
                    over = total > self.limit + 1 or block[-1:] != b"\r"
                if over:
                    self.over_at = start + self.limit
                    return
            start += total + 1


async def read_data(reader: asyncio.StreamReader, limit: int | None, line_limit: int, on_block=None) -> bytearray | bytes | str:
    """The message after ``354`` (bytes, or the bytearray it was read into when nothing in it
    had to change), LF line ends made CRLF and unstuffed, or the error reply
    when it broke a limit. ``on_block(total)`` is called with the bytes received so far after
    every block; what it raises ends the read."""
    buf = bytearray()
    base = 0  # stream offset of buf[0]: what was dropped once the answer was known
    scanned = fed = 0  # no terminator starts before buf[scanned - 4]; lines watched up to buf[fed]
    watch = _LineWatch(line_limit)
    keep = True  # False once the reply is an error: keep only what may start the terminator
    while True:
        if keep and buf[:3] == b".\r\n":  # an empty message
            end, rest = 0, buf[3:]
            break
        found = buf.find(_END, max(0, scanned - 4))
        if keep:
            watch.feed(buf[fed:found + 2 if found >= 0 else len(buf)])
            fed = len(buf)
        if found >= 0:
            end, rest = found + 2, buf[found + 5:]
            break
        scanned = len(buf)
        if keep and (_broke_line(watch, limit) or (limit and len(buf) > limit + 4)):
            keep = False
        if not keep:
            base += len(buf) - 4
            del buf[:-4]
            scanned = fed = len(buf)
        block = await reader.read(_BLOCK)
        if not block:
            raise ConnectionResetError("connection closed during DATA")
        buf += block
        if on_block is not None:
            on_block(base + len(buf))
    if rest:
        reader._buffer[:0] = rest  # pipelined commands after the dot: aiosmtpd reads them next
    if _broke_line(watch, limit):
        return (f"500 5.6.0 Line too long: a line of the message is over the {line_limit} octets this server accepts "
                "(RFC 5321 4.5.3.1.6); wrap it or send the text quoted-printable or base64")
    if not keep or (limit and end > limit):
        return "552 Error: Too much mail data"
    del buf[end:]
    return _unstuff(_crlf(buf))


def _broke_line(watch: _LineWatch, limit: int | None) -> bool:
    """A line broke its limit before the message broke ``limit`` (stock aiosmtpd answers for
    whichever limit the stream broke first)."""
    return watch.over_at is not None and (not limit or watch.over_at < limit)


def _crlf(data: bytearray) -> bytearray | bytes:
    """Every bare LF made CRLF; a bare CR stays."""
    if data.count(b"\n") == data.count(b"\r\n"):
        return data
    return _BARE_LF.sub(b"\r\n", data)


def _unstuff(data: bytearray | bytes) -> bytearray | bytes:
    """RFC 5321 4.5.2: the dot that starts a line was added for transparency. A message with
    no such dot comes back as it is, not copied (a 25 MB mail is held once, not twice)."""
    if data[:1] == b".":
        if isinstance(data, bytearray):
            del data[:1]
        else:
            data = data[1:]
    return data.replace(b"\r\n.", b"\r\n") if b"\r\n." in data else data


class FastData:
    """Mixed into aiosmtpd's SMTP or LMTP class (before it); the keyword arguments are the
    limits above (``None`` or 0: none) and ``on_close``, called once when the connection ends."""

    def __init__(self, *args, max_line_length: int = DEFAULT_LINE_LENGTH, session_timeout: float | None = None,
                 data_timeout: float | None = None, min_data_rate: int = 0, data_rate_grace: float = 30.0,
                 on_close=None, **kwargs):
        self.max_line_length = max_line_length
        self.session_timeout, self.data_timeout = session_timeout or None, data_timeout or None
        self.min_data_rate, self.data_rate_grace = min_data_rate, data_rate_grace
        self.on_close = on_close
        self._session_handle: asyncio.TimerHandle | None = None
        self._busy = False  # a message is being stored: time limits wait for its reply
        self._overdue: str | None = None  # the 421 to send once it has been answered
        super().__init__(*args, **kwargs)

    # --- time limits -----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        first = self.transport is None  # not the STARTTLS re-entry
        super().connection_made(transport)
        if first and self.session_timeout:
            self._session_handle = self.loop.call_later(self.session_timeout, self._time_up,
                                                        f"Session time limit of {self.session_timeout:g} seconds reached")

    def connection_lost(self, error) -> None:
        if self._session_handle is not None:
            self._session_handle.cancel()
        try:
            super().connection_lost(error)
        finally:
            on_close, self.on_close = self.on_close, None
            if on_close is not None:
                on_close()

    def _timeout_cb(self) -> None:
        """The idle timer (``timeout``): say why before closing, as for the other limits."""
        self._time_up(f"No command or data for {self._timeout_duration:g} seconds")

    def _time_up(self, why: str) -> None:
        if self._busy:
            self._overdue = why
        else:
            self._close_with(why)

    def _close_with(self, why: str) -> None:
        """``421 4.4.2`` with the reason, close the connection, end the dialogue."""
        if self.transport is None or self.transport.is_closing():
            return
        log.info("closing SMTP connection from %s: %s", (self.session.peer or ("?",))[0] if self.session else "?", why)
        self.transport.write(f"421 4.4.2 {self.hostname} {why}; closing connection\r\n".encode())
        self.transport.close()
        if self._handler_coroutine is not None:
            self._handler_coroutine.cancel()

    def _data_block(self, started: float, received: int) -> None:
        self._reset_timeout()
        elapsed = self.loop.time() - started
        if self.min_data_rate and elapsed > self.data_rate_grace and received < self.min_data_rate * elapsed:
            raise DataTooSlow(f"Message data arriving too slowly ({received} bytes in {elapsed:.0f} seconds; "
                              f"the minimum is {self.min_data_rate} bytes per second)")

    # --- addresses ---------------------------------------------------------------------------
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

    # --- DATA ----------------------------------------------------------------------------------
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
        started = self.loop.time()
        try:
            async with asyncio.timeout(self.data_timeout):
                data = await read_data(self._reader, self.data_size_limit, self.max_line_length,
                                       lambda received: self._data_block(started, received))
        except TimeoutError:
            self._close_with(f"DATA time limit of {self.data_timeout:g} seconds reached")
            return
        except DataTooSlow as exc:
            self._close_with(str(exc))
            return
        except asyncio.CancelledError:  # the connection went away during DATA
            self._writer.close()
            raise
        except ConnectionResetError:
            self._writer.close()
            return
        self._reset_timeout()
        if isinstance(data, str):
            await self.push(data)
            self._set_post_data_state()
            return
        self.envelope.original_content = data
        self.envelope.content = data.decode("utf-8", errors="surrogateescape") if self._decode_data else data
        self._busy = True
        try:
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push("250 OK" if status is MISSING else status)
        finally:
            self._busy = False
        if self._overdue:
            self._close_with(self._overdue)


class FastSMTP(FastData, SMTP):
    pass


class FastLMTP(FastData, LMTP):
    pass
