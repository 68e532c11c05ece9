"""FastSMTP against stock aiosmtpd SMTP: the same bytes through real sockets, the same replies and envelopes.

Two servers run in this process (aiosmtpd Controllers on free 127.0.0.1 ports), one with
:class:`maildesk.ingest.smtpdata.FastSMTP` and one with aiosmtpd's own ``SMTP``, both with the
same options. Every scenario is one raw byte stream (a whole conversation, pipelined or cut into
several sends with short pauses so the server sees the pieces separately) sent to both; the
replies (the greeting by code only) and the envelopes the handler saw must be identical.

Each scenario also states the reply codes stock aiosmtpd gives, so a scenario that stops
exercising what it is named after (a 552 that is no longer reached, say) fails as well.

Where FastSMTP differs on purpose, the differential tests say so and the difference has
tests of its own below:

* the line limit: maildesk accepts lines up to ``[smtp] max_line_length`` octets (64 KiB by
  default) where stock aiosmtpd stops at 999; the differential server is given
  ``max_line_length=999`` so both refuse the same lines, and its refusal, which names the
  limit (``500 5.6.0 Line too long: ...``), is compared as stock's text;
* bare LF: maildesk stores a line ended by a bare LF as a CRLF line and unstuffs its dot
  (as Postfix does), stock aiosmtpd keeps the LF and only unstuffs after CRLF. Both end the
  message only at CRLF.CRLF.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from maildesk.ingest.smtpdata import DEFAULT_LINE_LENGTH, FastSMTP, read_data
from tests.support.servers import free_port

LIMIT = 200_000
OPTIONS = {"data_size_limit": LIMIT, "enable_SMTPUTF8": True, "decode_data": False, "server_hostname": "test"}
PAUSE = 0.05  # between two sends of one scenario
TIMEOUT = 5.0  # waiting for the server to close the connection
EOF = None  # a chunk that half-closes the client's side instead of sending

CRLF = b"\r\n"
EHLO = b"EHLO client.test\r\n"
QUIT = b"QUIT\r\n"


# --- servers -----------------------------------------------------------------------------


class Recorder:
    """Accepts every recipient and every message; keeps what each DATA saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.envelopes: list[tuple] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.envelopes.append(
                (
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    list(envelope.mail_options),
                    list(envelope.rcpt_options),
                    envelope.smtp_utf8,
                )
            )
        return "250 OK"

    def take(self) -> list[tuple]:
        with self.lock:
            taken, self.envelopes = self.envelopes, []
        return taken


STOCK_LINE_LIMIT = 999  # stock aiosmtpd: line_length_limit 1001 octets with the CRLF
STOCK_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
FAST_TOO_LONG = re.compile(r"500 5\.6\.0 Line too long: a line of the message is over the (\d+) octets this server accepts .*")


class FastController(Controller):
    max_line_length = STOCK_LINE_LIMIT

    def factory(self):
        return FastSMTP(self.handler, max_line_length=self.max_line_length, **self.SMTP_kwargs)


class StockController(Controller):
    def factory(self):
        return SMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class Server:
    name: str
    port: int
    recorder: Recorder


@contextmanager
def server_pair(**options):
    """A stock and a fast server with the same SMTP options, and a pool to talk to both at once."""
    started: list[Controller] = []
    pair = {}
    try:
        for name, cls in (("stock", StockController), ("fast", FastController)):
            recorder = Recorder()
            # server_hostname, not hostname: Controller's own hostname is where it listens
            ctl = cls(recorder, hostname="127.0.0.1", port=free_port(), **{**OPTIONS, **options})
            ctl.start()
            started.append(ctl)
            pair[name] = Server(name, ctl.port, recorder)
        with ThreadPoolExecutor(max_workers=2) as pool:
            yield pair, pool
    finally:
        for ctl in started:
            ctl.stop()


@pytest.fixture(scope="module")
def servers():
    with server_pair() as both:
        yield both


# --- one conversation -------------------------------------------------------------------


@dataclass
class Transcript:
    replies: list[str] = field(default_factory=list)  # reply lines; the greeting as its code only
    end: str = "closed"
    envelopes: list[tuple] = field(default_factory=list)

    def codes(self) -> str:
        """One code per reply (a multi-line reply counts once), e.g. ``"220 250 250 250 354 250 221"``."""
        return " ".join(line[:3] for line in self.replies if line[3:4] != "-")


def converse(port: int, chunks: list[bytes | None], pause: float = PAUSE) -> Transcript:
    received = bytearray()
    end = "closed"
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        try:
            for i, chunk in enumerate(chunks):
                if i:
                    time.sleep(pause)
                if chunk is EOF:
                    sock.shutdown(socket.SHUT_WR)
                else:
                    sock.sendall(chunk)
        except OSError as exc:
            end = f"send failed: {exc.__class__.__name__}"
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                end = f"still open after {TIMEOUT}s"
                break
            except ConnectionResetError:
                end = "reset"
                break
            if not data:
                break
            received += data
    lines = [line.decode("utf-8", "backslashreplace") for line in bytes(received).split(CRLF)]
    if lines and lines[-1] == "":
        lines.pop()
    else:
        end += " (last reply without CRLF)"
    if lines:
        lines[0] = lines[0][:3]  # the greeting names host and version: compare its code
    return Transcript(lines, end)


def run_both(servers, chunks, pause: float = PAUSE) -> tuple[Transcript, Transcript]:
    pair, pool = servers
    for server in pair.values():
        server.recorder.take()
    futures = {name: pool.submit(converse, server.port, chunks, pause) for name, server in pair.items()}
    result = {name: f.result(timeout=4 * TIMEOUT + 10) for name, f in futures.items()}
    for name, server in pair.items():
        result[name].envelopes = server.recorder.take()
    fast = result["fast"]
    for i, line in enumerate(fast.replies):  # the refusal names the limit: compared as stock's text
        if (found := FAST_TOO_LONG.fullmatch(line)) and int(found.group(1)) == STOCK_LINE_LIMIT:
            fast.replies[i] = STOCK_TOO_LONG
    return result["stock"], fast


# --- comparing --------------------------------------------------------------------------


def _content(content: bytes | bytearray | None) -> str:
    """The octets received (FastSMTP hands over the bytearray DATA was read into, not a copy)."""
    if content is None:
        return "None"
    content = bytes(content)
    digest = hashlib.sha256(content).hexdigest()[:16]
    return f"len={len(content)} sha256={digest} head={content[:48]!r} tail={content[-48:]!r}"


def render(t: Transcript) -> list[str]:
    lines = [f"reply: {line}" for line in t.replies] + [f"connection: {t.end}"]
    for i, (mail_from, rcpt_tos, content, mail_options, rcpt_options, smtp_utf8) in enumerate(t.envelopes):
        lines += [
            f"envelope {i}: mail_from={mail_from!r} mail_options={mail_options!r} smtp_utf8={smtp_utf8!r}",
            f"envelope {i}: rcpt_tos={rcpt_tos!r} rcpt_options={rcpt_options!r}",
            f"envelope {i}: content {_content(content)}",
        ]
    return lines


def _first_content_difference(stock: Transcript, fast: Transcript) -> list[str]:
    notes = []
    for i, (a, b) in enumerate(zip(stock.envelopes, fast.envelopes, strict=False)):
        ca, cb = a[2] or b"", b[2] or b""
        if ca != cb:
            at = next((k for k, (x, y) in enumerate(zip(ca, cb, strict=False)) if x != y), min(len(ca), len(cb)))
            notes.append(
                f"envelope {i}: contents first differ at offset {at}: stock {ca[max(0, at - 20) : at + 40]!r} / fast {cb[max(0, at - 20) : at + 40]!r}"
            )
    return notes


def assert_same(stock: Transcript, fast: Transcript, chunks, expect: str | None) -> None:
    sent = b"".join(c for c in chunks if c is not EOF)
    shown = repr(sent if len(sent) <= 600 else sent[:300] + b" ... " + sent[-300:])
    problems = []
    if expect is not None and stock.codes() != expect:
        problems.append(f"stock aiosmtpd did not answer as the scenario expects (the scenario is wrong):\n  expected {expect}\n  got      {stock.codes()}")
    if render(stock) != render(fast) or stock.envelopes != fast.envelopes:
        diff = difflib.unified_diff(render(stock), render(fast), "stock aiosmtpd SMTP", "FastSMTP", lineterm="", n=2)
        problems.append("FastSMTP differs from stock aiosmtpd:\n" + "\n".join(diff))
        problems += _first_content_difference(stock, fast)
    if problems:
        pytest.fail(
            "\n\n".join(problems) + f"\n\nsent ({len(sent)} bytes in {len(chunks)} chunks): {shown}\n\nstock transcript:\n  " + "\n  ".join(render(stock)),
            pytrace=False,
        )


# --- building conversations ----------------------------------------------------------------


def txn(body: bytes, mail: bytes = b"<a@b.test>", rcpt: bytes = b"<c@d.test>") -> bytes:
    """MAIL, RCPT, DATA, the (already dot-stuffed) body and the final dot."""
    assert body == b"" or body.endswith(CRLF)
    return b"MAIL FROM:" + mail + CRLF + b"RCPT TO:" + rcpt + CRLF + b"DATA\r\n" + body + b".\r\n"


def session(*parts: bytes, hello: bytes = EHLO) -> bytes:
    return hello + b"".join(parts) + QUIT


def text_body(size: int) -> bytes:
    """About ``size`` bytes of numbered 80-octet lines, every seventh one dot-stuffed."""
    out = []
    for i in range(size // 80 + 1):
        line = b"%06d " % i + b"abcdefghij" * 7 + b"\r\n"
        out.append(b".." + line[2:] if i % 7 == 3 else line)
    return b"".join(out)


def body_of(size: int) -> bytes:
    """Exactly ``size`` bytes of CRLF-ended lines of at most 80 octets (counted as sent)."""
    line = b"x" * 78 + CRLF
    full, rest = divmod(size, len(line))
    if rest == 1:
        return line * (full - 1) + b"z" * 79 + CRLF
    return line * full + (b"y" * (rest - 2) + CRLF if rest else b"")


SMALL = b"Subject: small\r\n\r\nsmall body\r\n"
BIG = text_body(150_000)
HUGE = text_body(250_000)  # over LIMIT
OK1 = "220 250 250 250 354 250 221"  # EHLO, MAIL, RCPT, DATA, message accepted, QUIT
OK2 = "220 250 250 250 354 250 250 250 354 250 221"


def split_at_end(conversation: bytes, tail: bytes) -> list[bytes]:
    """The conversation in two sends, the second starting with ``tail`` (which must occur in it)."""
    at = conversation.rindex(tail)
    return [conversation[:at], conversation[at:]]


def data_scenarios():
    s = session
    p = pytest.param
    simple = s(txn(SMALL))
    big = s(txn(BIG))
    huge_then_small = s(txn(HUGE), txn(SMALL, mail=b"<b@x.test>", rcpt=b"<c@y.test>"))
    yield p([simple], OK1, id="simple")
    yield p([s(txn(b""))], OK1, id="empty-message")
    yield p([s(txn(CRLF))], OK1, id="only-an-empty-line")
    yield p([s(txn(b".leading dot\r\n..two dots\r\n...three\r\nmid.dle\r\n. space\r\n.x.\r\n"))], OK1, id="dot-stuffing")
    yield p([s(txn(b"before\r\n..\r\nafter\r\n"))], OK1, id="line-exactly-dotdot")
    yield p([s(txn(b"..\r\n"))], OK1, id="first-and-only-line-dotdot")
    yield p([s(txn(b".\tx\r\n"))], OK1, id="first-line-stuffed")
    yield p([s(txn(b"one\r.\r\ntwo\r\n\r\r\n"))], OK1, id="bare-cr")
    yield p([s(txn(b"caf\xe9 \xff\xfe\x80\x00\r\n\xc3\xa9t\xc3\xa9 \xe2\x82\r\n", mail=b"<a@b.test> BODY=8BITMIME"))], OK1, id="8bit-non-utf8-body")
    # the terminator across reads and sends
    yield p([big], OK1, id="150k-one-send")
    yield p([s(txn(text_body(65_536 * 2)))], OK1, id="128k-one-send")
    yield p(split_at_end(big, b".\r\nQUIT"), OK1, id="150k-then-dot-in-second-send")
    yield p(split_at_end(big, b"\r\nQUIT"), OK1, id="150k-split-inside-terminator-crlf-dot|crlf")
    yield p(split_at_end(big, b"\n.\r\nQUIT"), OK1, id="150k-split-inside-terminator-cr|lf-dot-crlf")
    yield p(split_at_end(big, b"\nQUIT"), OK1, id="150k-split-inside-terminator-crlf-dot-cr|lf")
    yield p(split_at_end(simple, b".\r\nQUIT"), OK1, id="small-then-dot-in-second-send")
    yield p(split_at_end(simple, b"\r\nQUIT"), OK1, id="small-split-inside-terminator")
    yield p([big[i : i + 30_011] for i in range(0, len(big), 30_011)], OK1, id="150k-in-six-sends")
    head, tail = split_at_end(simple, b"\r\n.\r\nQUIT")
    yield p([head, b"\r", b"\n", b".", b"\r", b"\n", tail[5:]], OK1, id="terminator-byte-by-byte")
    head, tail = split_at_end(s(txn(b"")), b".\r\nQUIT")
    yield p([head, b".", b"\r\nQUIT\r\n"], OK1, id="empty-message-dot|crlf")
    head, tail = split_at_end(s(txn(b"..x\r\n")), b"..x\r\n")
    yield p([head, b".", tail[1:]], OK1, id="first-line-stuffing-dot|rest")
    # pipelining after the final dot
    two = s(txn(SMALL), txn(b"second\r\n", mail=b"<b@x.test>", rcpt=b"<c@y.test>"))
    yield p([two], OK2, id="two-messages-one-send")
    yield p(split_at_end(two, b"OM:<b@x.test>"), OK2, id="pipelined-command-cut-after-dot")
    many = s(*(txn(b"message %d\r\n..dot\r\n" % i) + b"NOOP\r\nRSET\r\n" for i in range(5)))
    yield p([many], "220 250" + " 250 250 354 250 250 250" * 5 + " 221", id="five-messages-noop-rset-one-send")
    yield p([s(txn(SMALL), txn(BIG))], OK2, id="small-then-150k-one-send")
    yield p([s(txn(BIG), txn(SMALL))], OK2, id="150k-then-small-one-send")
    yield p([s(txn(BIG), txn(BIG), txn(b""))], "220 250" + " 250 250 354 250" * 3 + " 221", id="150k-150k-empty-one-send")
    # line lengths: aiosmtpd's line_length_limit is 1001 octets with the CRLF
    for n, expect in (
        (998, OK1),
        (999, OK1),
        (1000, "220 250 250 250 354 500 221"),
        (1001, "220 250 250 250 354 500 221"),
        (1002, "220 250 250 250 354 500 221"),
    ):
        yield p([s(txn(b"short\r\n" + b"L" * n + b"\r\nshort\r\n"))], expect, id=f"line-{n}-octets")
    yield p([s(txn(b"." + b"L" * 998 + CRLF))], OK1, id="stuffed-line-999-octets")
    yield p([s(txn(b"." + b"L" * 999 + CRLF))], "220 250 250 250 354 500 221", id="stuffed-line-1000-octets")
    yield p([s(txn(b"L" * 5000 + CRLF), txn(SMALL))], "220 250 250 250 354 500 250 250 354 250 221", id="line-5000-then-small")
    long_line = s(txn(b"a\r\n" + b"L" * 3000 + b"\r\nb\r\n"))
    at = long_line.index(b"L" * 3000) + 1500
    yield p([long_line[:at], long_line[at:]], "220 250 250 250 354 500 221", id="line-3000-across-sends")
    yield p([s(txn(b"L" * 999 + CRLF))], OK1, id="line-999-right-before-terminator")
    yield p(split_at_end(s(txn(b"L" * 3000 + CRLF)), b"\n.\r\nQUIT"), "220 250 250 250 354 500 221", id="line-3000-cr|lf-dot-crlf")
    yield p(split_at_end(s(txn(b"L" * 3000 + CRLF)), b"\r\n.\r\nQUIT"), "220 250 250 250 354 500 221", id="line-3000|crlf-dot-crlf")
    # the size limit (data_size_limit=200_000, counted before unstuffing)
    yield p([s(txn(body_of(LIMIT)))], OK1, id="exactly-at-limit")
    yield p([s(txn(body_of(LIMIT + 1)))], "220 250 250 250 354 552 221", id="one-over-limit")
    yield p([s(txn(b".." + body_of(LIMIT)[2:]))], OK1, id="at-limit-with-stuffed-first-line")
    yield p([huge_then_small], "220 250 250 250 354 552 250 250 354 250 221", id="250k-552-then-small-one-send")
    yield p(split_at_end(huge_then_small, b".\r\nMAIL FROM:<b@x.test>"), "220 250 250 250 354 552 250 250 354 250 221", id="250k-then-dot-in-second-send")
    yield p(split_at_end(huge_then_small, b"\r\nMAIL FROM:<b@x.test>"), "220 250 250 250 354 552 250 250 354 250 221", id="250k-split-inside-terminator")
    yield p(
        [huge_then_small[i : i + 40_009] for i in range(0, len(huge_then_small), 40_009)],
        "220 250 250 250 354 552 250 250 354 250 221",
        id="250k-in-seven-sends",
    )
    yield p([s(txn(HUGE + b"L" * 3000 + CRLF))], "220 250 250 250 354 552 221", id="over-limit-then-long-line")
    yield p([s(txn(b"L" * 3000 + CRLF + HUGE))], "220 250 250 250 354 500 221", id="long-line-then-over-limit")
    yield p([s(txn(b"L" * 1000 + CRLF + HUGE))], "220 250 250 250 354 500 221", id="line-1000-then-over-limit")
    yield p([s(txn(b"L" * 250_000 + CRLF))], "220 250 250 250 354 500 221", id="one-250k-line")
    yield p(
        [s(txn(SMALL, mail=b"<a@b.test> SIZE=200001"), txn(SMALL, mail=b"<a@b.test> SIZE=200000"))],
        "220 250 552 503 503 500 500 500 500 250 250 354 250 221",
        id="mail-size-over-limit",
    )
    # DATA out of place
    yield p(
        [b"DATA\r\nHELO client.test\r\nDATA\r\nMAIL FROM:<a@b.test>\r\nDATA\r\nRCPT TO:<c@d.test>\r\nDATA x\r\nRSET\r\nDATA\r\nQUIT\r\n"],
        "220 503 250 503 250 503 250 501 250 503 221",
        id="data-out-of-order",
    )
    # the client goes away in the middle of DATA
    yield p([EHLO + b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\npart of a message\r\n", EOF], "220 250 250 250 354", id="eof-during-data")


ADDRESSES = [
    ("plain", b"<a@b.test>"),
    ("params", b"<a@b.test> SIZE=123 BODY=8BITMIME"),
    ("params-tab", b"<a@b.test>\tSIZE=123"),
    ("params-no-space", b"<a@b.test>SIZE=123"),
    ("params-bad-size", b"<a@b.test> SIZE=abc"),
    ("params-unknown", b"<a@b.test> FOO=1"),
    ("params-bad-body", b"<a@b.test> BODY=BINARYMIME"),
    ("params-empty-value", b"<a@b.test> SIZE="),
    ("null", b"<>"),
    ("null-with-params", b"<> SIZE=10"),
    ("space-after-colon", b" <a@b.test>"),
    ("all-atext", b"<first.last+tag=x/y!#$%&'*?^_`{|}~-@sub-1.example-2.test>"),
    ("quoted-local", b'<"x y"@b.test>'),
    ("quoted-plain-local", b'<"xy"@b.test>'),
    ("source-route", b"<@relay.test:a@b.test>"),
    ("address-literal", b"<a@[127.0.0.1]>"),
    ("ipv6-literal", b"<a@[IPv6:::1]>"),
    ("utf8-smtputf8", "<jürgen@b.test> SMTPUTF8".encode()),
    ("utf8-domain", "<a@bücher.test>".encode()),
    ("latin1-bytes", b"<j\xfcrgen@b.test>"),
    ("bare", b"a@b.test"),
    ("bare-with-params", b"a@b.test SIZE=10"),
    ("no-domain", b"<postmaster>"),
    ("trailing-dot-domain", b"<a@b.test.>"),
    ("double-dot-local", b"<a..b@c.test>"),
    ("spaces-inside", b"< a@b.test >"),
    ("missing-close", b"<a@b.test"),
    ("extra-close", b"<a@b.test>>"),
    ("bad-empty-domain", b"<a@>"),
    ("bad-double-open", b"<<a@b>"),
    ("bad-two-ats", b"<a@b@c.test>"),
    ("comment-after", b"<a@b.test> (comment)"),
    ("comment-glued-then-params", b"<a@b.test>(comment) SIZE=10"),
    ("encoded-word-local", b"<=?utf-8?q?abc?=@b.test>"),
    ("long-local-part", b"<" + b"l" * 300 + b"@b.test>"),
]


def address_scenarios():
    for name, addr in ADDRESSES:
        yield pytest.param([session(txn(b"one line\r\n", mail=addr))], None, id=f"mail-from-{name}")
        yield pytest.param([session(txn(b"one line\r\n", rcpt=addr))], None, id=f"rcpt-to-{name}")
    yield pytest.param(
        [b"mail from:<a@b.test>\r\nHELO client.test\r\nmail from:<a@b.test> SIZE=10\r\nmail FROM:<a@b.test>\r\nrcpt to:<c@d.test> NOTIFY=NEVER\r\nQUIT\r\n"],
        None,
        id="helo-lowercase-and-params",
    )


@pytest.mark.parametrize(("chunks", "expect"), [*data_scenarios(), *address_scenarios()])
def test_fast_smtp_answers_like_stock_aiosmtpd(servers, chunks, expect):
    stock, fast = run_both(servers, chunks)
    assert_same(stock, fast, chunks, expect)


def test_slow_data_keeps_the_connection_while_it_moves():
    """A message trickling in for longer than ``timeout`` after DATA, each piece well within it.

    Stock aiosmtpd restarts its idle timer only per command and drops such a client in the
    middle of the message; FastSMTP restarts it for every block received (RFC 5321 4.5.3.2
    times DATA per block, not per message), so the message arrives whole."""
    head = EHLO + b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
    pieces = [b"piece %d of a slow message\r\n" % i for i in range(12)]
    chunks = [head, *pieces, b".\r\nQUIT\r\n"]
    with server_pair(timeout=0.3) as both:
        stock, fast = run_both(both, chunks, pause=0.06)
    assert stock.envelopes == [], "stock aiosmtpd no longer drops a slow DATA: this test's premise is gone"
    assert fast.codes() == "220 250 250 250 354 250 221", render(fast)
    assert [e[2] for e in fast.envelopes] == [b"".join(pieces)]


def test_idle_client_in_data_is_dropped():
    """The per-block timer is still a timer: a client that stops sending in DATA is cut off."""
    head = EHLO + b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\nfirst line\r\n"
    with server_pair(timeout=0.3) as both:
        pair, _ = both
        with socket.create_connection(("127.0.0.1", pair["fast"].port), timeout=TIMEOUT) as sock:
            sock.sendall(head)
            started = time.monotonic()
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            waited = time.monotonic() - started
        assert pair["fast"].recorder.take() == []
    assert b"354" in received
    assert 0.2 < waited < TIMEOUT, waited


# --- where FastSMTP differs on purpose -------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    """Stock aiosmtpd beside FastSMTP with maildesk's default line limit (64 KiB)."""

    class Shipped(FastController):
        max_line_length = DEFAULT_LINE_LENGTH

    started = []
    try:
        for cls in (StockController, Shipped):
            ctl = cls(Recorder(), hostname="127.0.0.1", port=free_port(), **OPTIONS)
            ctl.start()
            started.append(ctl)
        pair = {name: Server(name, ctl.port, ctl.handler) for name, ctl in zip(("stock", "fast"), started, strict=True)}
        with ThreadPoolExecutor(max_workers=2) as pool:
            yield pair, pool
    finally:
        for ctl in started:
            ctl.stop()


LF_LINES = b"".join(b"line %03d of a message with LF line ends\n" % i for i in range(40))  # 1,640 octets


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        pytest.param(b"one\ntwo\n.\nthree\n.\r\nfour\r\n", b"one\r\ntwo\r\n\r\nthree\r\n\r\nfour\r\n", id="lf-dot-lf-and-lf-dot-crlf-are-text"),
        pytest.param(b"a\r\n.\nb\r\n", b"a\r\n\r\nb\r\n", id="crlf-dot-lf-is-text"),
        pytest.param(b"Subject: x\n\n..hidden\n...two\nend\n\r\n", b"Subject: x\r\n\r\n.hidden\r\n..two\r\nend\r\n\r\n", id="smtplib-bytes-lf-stuffed"),
        pytest.param(b".first\nx\ry\r\n", b"first\r\nx\ry\r\n", id="first-line-stuffed-lf-bare-cr-kept"),
        pytest.param(LF_LINES + b"\r\n", LF_LINES.replace(b"\n", b"\r\n") + b"\r\n", id="lf-message-over-1000-octets"),
    ],
)
def test_bare_lf_lines_are_stored_as_crlf_and_unstuffed(shipped, body, stored):
    stock, fast = run_both(shipped, [session(txn(body))])
    assert fast.codes() == OK1, render(fast)
    assert [e[2] for e in fast.envelopes] == [stored]
    assert [e[2] for e in stock.envelopes] != [stored], "stock aiosmtpd stores this the same way: the case shows no difference"


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\n.\r\r\n"])
def test_no_smtp_smuggling_past_a_fake_end_of_data(shipped, fake_end):
    """Only CRLF.CRLF ends DATA: what follows a fake end is text of the same message, never commands."""
    smuggled = b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@d.test>\r\nDATA\r\nFrom: ceo@d.test\r\n\r\nsmuggled\r\n"
    body = b"Subject: first\r\n\r\nhello" + fake_end + smuggled
    for transcript in run_both(shipped, [session(txn(body))]):
        assert transcript.codes() == OK1, render(transcript)
        assert len(transcript.envelopes) == 1, render(transcript)
        mail_from, rcpt_tos, content = transcript.envelopes[0][:3]
        assert (mail_from, rcpt_tos) == ("a@b.test", ["c@d.test"])
        assert b"MAIL FROM:<evil@attacker.test>" in content and content.endswith(b"smuggled\r\n")


@pytest.mark.parametrize(
    ("line", "ok"),
    [(5000, True), (DEFAULT_LINE_LENGTH, True), (DEFAULT_LINE_LENGTH + 1, False), (300_000, False)],
)
@pytest.mark.parametrize("ending", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_long_lines_up_to_the_configured_limit(shipped, line, ok, ending):
    body = b"short" + ending + b"L" * line + ending + b"short" + ending
    chunks = [session(txn(body + (b"" if ending == CRLF else CRLF)), txn(SMALL))]
    pair, _ = shipped
    pair["fast"].recorder.take()
    fast = converse(pair["fast"].port, chunks)
    contents = [e[2] for e in pair["fast"].recorder.take()]
    if ok:
        assert fast.codes() == OK2, render(fast)
        assert contents[0].replace(b"\r\n", b"") == b"short" + b"L" * line + b"short"
    else:
        assert fast.codes() == "220 250 250 250 354 500 250 250 354 250 221", render(fast)
        refusal = next(r for r in fast.replies if r.startswith("500"))
        assert refusal.startswith(f"500 5.6.0 Line too long: a line of the message is over the {DEFAULT_LINE_LENGTH} octets")
        assert contents == [SMALL]


class _Blocks:
    """A stand-in for the StreamReader: read() returns the given blocks one by one."""

    def __init__(self, blocks):
        self.blocks, self._buffer = list(blocks), bytearray()

    async def read(self, n):
        return self.blocks.pop(0) if self.blocks else b""


def _read_in_pieces(stream: bytes, cuts, limit=None, line_limit=10):
    pieces = [stream[a:b] for a, b in zip((0, *cuts), (*cuts, len(stream)), strict=True)]
    reader = _Blocks(pieces)
    result = asyncio.run(read_data(reader, limit, line_limit))
    return result, bytes(reader._buffer) + b"".join(reader.blocks)


@pytest.mark.parametrize(
    ("stream", "expect"),
    [
        (b"0123456789\r\n.\r\n", b"0123456789\r\n"),  # exactly the limit with CRLF
        (b"0123456789\n.\r\n", None),  # LF then CRLF.CRLF is no end: the data goes on (and ends nowhere here)
        (b"0123456789\n\r\n.\r\n", b"0123456789\r\n\r\n"),  # exactly the limit with LF
        (b"0123456789\r\r\n.\r\n", "500"),  # a CR before the CRLF is text: 11 octets
        (b"01234567890\r\n.\r\n", "500"),
        (b"0123456789\rX\r\n.\r\n", "500"),
        (b"..23456789\r\n.\r\n", b".23456789\r\n"),  # counted as sent, before unstuffing
        (b"a\n.b\n..c\r\n.\r\nNEXT\r\n", b"a\r\nb\r\n.c\r\n"),
    ],
)
def test_read_data_in_every_two_pieces(stream, expect):
    """The line limit (10 here) and the terminator however the stream is cut into blocks."""
    for a in range(1, len(stream)):
        for b in range(a, len(stream)):
            cuts = (a,) if a == b else (a, b)
            if expect is None:
                with pytest.raises(ConnectionResetError):
                    _read_in_pieces(stream, cuts)
                continue
            result, rest = _read_in_pieces(stream, cuts)
            if expect == "500":
                assert isinstance(result, str) and result.startswith("500 5.6.0 Line too long") and "10 octets" in result, cuts
            else:
                assert result == expect, cuts
                assert rest == stream[stream.index(b"\r\n.\r\n") + 5:], cuts
