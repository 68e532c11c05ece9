"""An asyncio SMTP load generator speaking SMTP itself over asyncio streams.

Each connection says EHLO once and then runs MAIL FROM / RCPT TO / DATA transactions
back to back on the same session (RSET only after a refusal). The accept latency of a
message is the time from the end of its DATA (the final ``.`` written and drained) to the
server's reply; the end-of-DATA time is kept (``time.monotonic()``, system-wide on Linux)
so the end-to-end latency can be matched against the sink's arrival times.

Two modes:

* :func:`closed_loop`: ``concurrency`` connections send as fast as the server answers.
  Items whose placeholders need an acknowledgement that has not arrived yet are set
  aside and sent once it has (see :mod:`bench.corpus`).
* :func:`open_loop`: a fixed offered load (messages per second), independent of how
  fast the server answers; messages wait for a free connection when all are busy.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.corpus import Item

__all__ = ["LoadResult", "Sent", "closed_loop", "open_loop", "percentile"]


@dataclass
class Sent:
    index: int
    message_id: str
    code: int
    end_of_data: float  # monotonic
    latency: float  # seconds, end of DATA -> reply
    scheduled_delay: float = 0.0  # open loop: how late the message left compared to its schedule


@dataclass
class LoadResult:
    sent: list[Sent] = field(default_factory=list)
    started: float = 0.0
    main_done: float = 0.0  # closed loop: last reply for what was sent while nothing was held back
    main_count: int = 0
    finished: float = 0.0
    skipped: int = 0  # held-back items whose acknowledgement never came
    errors: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> list[Sent]:
        return [s for s in self.sent if s.code == 250]


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


class SmtpError(Exception):
    pass


class Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        await self._reply(220)
        await self._command(b"EHLO loadgen.example.test", 250)

    async def _reply(self, expect: int | None = None) -> tuple[int, str]:
        assert self.reader is not None
        lines = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise SmtpError("connection closed by the server")
            lines.append(line.decode("utf-8", "replace").rstrip())
            if len(line) < 4 or line[3:4] != b"-":
                break
        code = int(lines[-1][:3])
        if expect is not None and code != expect:
            raise SmtpError(" / ".join(lines))
        return code, "\n".join(lines)

    async def _command(self, line: bytes, expect: int | None = None) -> tuple[int, str]:
        assert self.writer is not None
        self.writer.write(line + b"\r\n")
        return await self._reply(expect)

    async def send(self, mail_from: str, rcpt: str, data: bytes) -> tuple[int, float, float]:
        """One transaction; returns (reply code, end-of-DATA time, latency)."""
        assert self.writer is not None
        code, _ = await self._command(f"MAIL FROM:<{mail_from}> SIZE={len(data)}".encode())
        if code == 250:
            code, _ = await self._command(f"RCPT TO:<{rcpt}>".encode())
        if code == 250:
            code, _ = await self._command(b"DATA")
        if code != 354:
            await self._command(b"RSET", 250)
            return code, time.monotonic(), 0.0
        self.writer.write(data)
        self.writer.write(b".\r\n")
        await self.writer.drain()
        t0 = time.monotonic()
        code, _ = await self._reply()
        return code, t0, time.monotonic() - t0

    async def close(self) -> None:
        if self.writer is None:
            return
        try:
            self.writer.write(b"QUIT\r\n")
            await asyncio.wait_for(self._reply(), 5)
        except (SmtpError, OSError, TimeoutError):
            pass
        self.writer.close()


Resolver = Callable[[Item], "dict | None"]


async def closed_loop(items: list[Item], port: int, concurrency: int = 16, *, resolve: Resolver | None = None,
                      hold_timeout: float = 120.0, host: str = "127.0.0.1") -> LoadResult:
    """Send ``items`` in order over ``concurrency`` reused sessions, as fast as answered.

    ``resolve(item)`` gives the acknowledgement record a dynamic item needs, or None while
    it has not arrived (the item is held back); without ``resolve`` placeholders get dummies."""
    res = LoadResult()
    queue: deque[Item] = deque(items)
    held: list[Item] = []
    inflight_main = 0
    state = {"main_open": True, "progress": time.monotonic()}

    ready: deque[tuple[Item, dict]] = deque()
    scanned = [0.0]

    def rescan() -> None:
        """Move held-back items whose acknowledgement has arrived to ``ready`` (at most every 0.1 s)."""
        if not held or resolve is None or time.monotonic() - scanned[0] < 0.1:
            return
        scanned[0] = time.monotonic()
        waiting = []
        for item in held:
            ack = resolve(item)
            if ack is None:
                waiting.append(item)
            else:
                ready.append((item, ack))
        held[:] = waiting

    def next_item() -> tuple[Item, dict | None] | None:
        rescan()
        if ready:
            return ready.popleft()
        while queue:
            item = queue.popleft()
            if not item.dynamic or resolve is None:
                return item, None
            ack = resolve(item)
            if ack is None:
                held.append(item)
                continue
            return item, ack
        return None

    async def worker() -> None:
        nonlocal inflight_main
        conn = Connection(host, port)
        await conn.open()
        try:
            while True:
                nxt = next_item()
                if nxt is None:
                    if state["main_open"]:
                        state["main_open"] = False
                        res.main_count = len(res.sent) + inflight_main
                    if not held:
                        return
                    if time.monotonic() - state["progress"] > hold_timeout:
                        res.skipped += len(held)
                        held.clear()
                        return
                    await asyncio.sleep(0.02)
                    continue
                item, ack = nxt
                rcpt, data = item.wire(ack)
                main = state["main_open"]
                inflight_main += main
                try:
                    code, t_end, latency = await conn.send(item.mail_from, rcpt, data)
                finally:
                    inflight_main -= main
                res.sent.append(Sent(item.index, item.message_id, code, t_end, latency))
                state["progress"] = time.monotonic()
                if main:
                    res.main_done = max(res.main_done, time.monotonic())
                if code != 250 and len(res.errors) < 5:
                    res.errors.append(f"item {item.index}: reply {code}")
        finally:
            await conn.close()

    res.started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    res.finished = time.monotonic()
    if state["main_open"]:
        res.main_count = len(res.sent)
    res.main_done = res.main_done or res.finished
    return res


async def open_loop(items: list[Item], port: int, rate: float, concurrency: int = 16,
                    host: str = "127.0.0.1") -> LoadResult:
    """Offer ``items`` at ``rate`` messages per second (placeholders get dummies)."""
    res = LoadResult()
    queue: asyncio.Queue = asyncio.Queue()
    conns = [Connection(host, port) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in conns))

    async def worker(conn: Connection) -> None:
        while True:
            job = await queue.get()
            if job is None:
                return
            item, due = job
            rcpt, data = item.wire(None)
            late = time.monotonic() - due
            code, t_end, latency = await conn.send(item.mail_from, rcpt, data)
            res.sent.append(Sent(item.index, item.message_id, code, t_end, latency, late))

    tasks = [asyncio.create_task(worker(c)) for c in conns]
    res.started = start = time.monotonic()
    for k, item in enumerate(items):
        due = start + k / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((item, due))
    for _ in conns:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    await asyncio.gather(*(c.close() for c in conns))
    res.finished = res.main_done = time.monotonic()
    res.main_count = len(res.sent)
    return res
