"""Connection and time limits of the listener, through real sockets against the real daemon.

Loopback only: the abusive client is 127.0.0.1 (or 127.0.0.3-5), the normal sender binds
127.0.0.2 as its source address. Every wait is bounded, so each test stops by itself.
"""

from __future__ import annotations

import os
import re
import resource
import smtplib
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from maildesk.ingest.smtplimits import client_of
from tests.support.mail import make_mail
from tests.support.servers import wait_until

NORMAL = "127.0.0.2"


def connect(port: int, source: str = "127.0.0.1", timeout: float = 5.0) -> tuple[socket.socket, bytes]:
    """A connection from ``source`` and the server's first line (b"" when it closed without one)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    return sock, read_line(sock)


def read_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        try:
            chunk = sock.recv(1)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        line += chunk
    return line


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return received
        if not chunk:
            return received
        received += chunk


def send_normal_mail(port: int, subject: str) -> float:
    """Seconds from connecting to the ``250`` for one message from 127.0.0.2."""
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(NORMAL, 0)) as smtp:
        smtp.send_message(make_mail(subject=subject))
    return time.monotonic() - started


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").iterdir():
            todo += [int(c) for c in (task / "children").read_text().split()]
    return pids


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def subjects(daemon) -> list[str]:
    """The Subject of every stored inbox row, in order."""
    with sqlite3.connect(daemon.config.parent / "var" / "maildesk.db") as db:
        raws = [row[0] for row in db.execute("SELECT raw FROM inbox_raw ORDER BY inbox_id")]
    return [re.search(rb"^Subject: (.*?)\r?$", raw, re.M).group(1).decode() for raw in raws]


def log_lines(daemon, pattern: str) -> list[str]:
    return [line for line in daemon.log.read_text(errors="replace").splitlines() if re.search(pattern, line)]


class Trickler(threading.Thread):
    """Keeps sending one byte at a time on each socket until stopped or the server closes it."""

    def __init__(self, socks: list[socket.socket], payload: bytes, every: float):
        super().__init__(daemon=True)
        self.socks, self.payload, self.every = list(socks), payload, every
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set() and self.socks:
            byte = self.payload[i % len(self.payload):][:1]
            for sock in list(self.socks):
                try:
                    sock.send(byte)
                except OSError:
                    self.socks.remove(sock)
            i += 1
            self.stop.wait(self.every)


def test_one_client_far_over_its_cap_does_not_keep_another_from_sending(daemon_factory):
    cap = 10
    d = daemon_factory(smtp={"max_connections_per_client": cap, "max_connections": 60, "session_timeout": 8.0})
    send_normal_mail(d.port, "warm-up")  # everything a message needs is loaded before the baseline
    wait_until(lambda: list((d.config.parent / "var" / "sent" / "new").glob("*")), timeout=30, what="the warm-up's acknowledgement")
    pids = process_tree(d.proc.pid)
    baseline = {pid: rss(pid) for pid in pids}
    held, refused = [], []
    try:
        for _ in range(20 * cap):  # twenty times the cap from one address
            sock, first = connect(d.port)
            (held if first.startswith(b"220") else refused).append((sock, first))
        assert len(held) == cap, [f for _, f in refused[:3]]
        assert len(refused) == 19 * cap
        assert all(f.startswith(b"421 4.7.0 ") and b"Too many connections from your address" in f for _, f in refused)
        for sock, _ in refused:
            assert read_until_closed(sock) == b""  # closed by the server after the 421
            sock.close()
        trickler = Trickler([s for s, _ in held], b"NOOP\r\n", 0.05)
        trickler.start()
        # the abuser keeps knocking while a normal sender from another address sends its mail
        knocks = 0
        latencies = []
        for i in range(3):
            for _ in range(30):
                sock, first = connect(d.port)
                assert first.startswith(b"421 4.7.0"), first
                sock.close()
                knocks += 1
            latencies.append(send_normal_mail(d.port, f"normal {i}"))
        assert max(latencies) < 3.0, latencies
        # once per interval (60 s by default), not once per connection: the first refusal so far
        assert len(log_lines(d, "refused .* SMTP connection")) == 1
        trickler.stop.set()
        trickler.join(5)
    finally:
        for sock, _ in held:
            sock.close()
    assert subjects(d) == ["warm-up", "normal 0", "normal 1", "normal 2"]
    # the connections are gone: memory back near where it was (within 20 %)
    wait_until(lambda: all(rss(pid) <= baseline[pid] * 1.2 for pid in pids if Path(f"/proc/{pid}").exists()),
               timeout=15, what=f"RSS back within 20 % of {baseline}, now {[rss(p) for p in pids]}")


def test_the_global_cap_counts_every_client(daemon_factory):
    d = daemon_factory(smtp={"max_connections": 12, "max_connections_per_client": 5})
    held = []
    try:
        for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
            for _ in range(5):
                sock, first = connect(d.port, source)
                held.append((sock, first))
        assert sum(f.startswith(b"220") for _, f in held) == 12
        assert all(f.startswith(b"421 4.7.0 ") and b"Too many connections to this server" in f for _, f in held[12:])
        sock, first = connect(d.port, NORMAL)
        assert first.startswith(b"421 4.7.0 ") and b"Too many connections to this server" in first
        sock.close()
    finally:
        for sock, _ in held:
            sock.close()
    assert wait_until(lambda: _accepted(d.port), timeout=10, what="a connection once the others closed")
    assert send_normal_mail(d.port, "after the crowd") < 3.0


def _accepted(port: int) -> bool:
    sock, first = connect(port, NORMAL)
    sock.close()
    return first.startswith(b"220")


HEAD = b"EHLO client.test\r\nMAIL FROM:<jane@customer.test>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n"


@pytest.mark.parametrize(
    ("limits", "talk", "reply", "within"),
    [
        pytest.param({"idle_timeout": 1.0}, b"EHLO client.test\r\n", b"421 4.4.2 example.test No command or data for 1 seconds", 4,
                     id="idle"),
        pytest.param({"session_timeout": 2.0, "idle_timeout": 30.0}, b"NOOP\r\n", b"421 4.4.2 example.test Session time limit of 2 seconds",
                     5, id="session-while-busy-with-noops"),
        pytest.param({"data_timeout": 2.0, "min_data_rate": 0}, b"x", b"421 4.4.2 example.test DATA time limit of 2 seconds", 5,
                     id="data-total-time-not-per-block"),
        pytest.param({"min_data_rate": 200, "data_rate_grace": 1.0}, b"x", b"421 4.4.2 example.test Message data arriving too slowly", 5,
                     id="min-data-rate"),
    ],
)
def test_time_limits_close_with_421_naming_the_limit(daemon_factory, limits, talk, reply, within):
    d = daemon_factory(smtp=limits)
    sock, first = connect(d.port, timeout=within + 5)
    assert first.startswith(b"220")
    sock.sendall(HEAD if talk == b"x" else talk)
    started = time.monotonic()
    trickler = Trickler([sock], talk if talk != b"x" else b"a line of text\r\n", 0.1)  # each piece well within idle_timeout
    if talk != b"EHLO client.test\r\n":
        trickler.start()
    try:
        received = read_until_closed(sock)
    finally:
        trickler.stop.set()
        sock.close()
    assert time.monotonic() - started < within
    last = received.rstrip(b"\r\n").split(b"\r\n")[-1]
    assert last.startswith(reply), received[-300:]
    assert send_normal_mail(d.port, "still fine") < 3.0
    assert subjects(d) == ["still fine"]


def test_accept_failures_back_off_with_one_log_line(daemon_factory):
    """Out of file descriptors: accept() fails; the daemon says so once, not a traceback per attempt, and recovers."""
    d = daemon_factory(smtp={"max_connections": 1000, "max_connections_per_client": 1000})
    pid = d.proc.pid
    open_fds = len(os.listdir(f"/proc/{pid}/fd"))
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_fds + 20, old[1]))
    socks = []
    try:
        for _ in range(60):  # the kernel completes the handshakes; the daemon cannot accept them all
            socks.append(socket.create_connection(("127.0.0.1", d.port), timeout=5))
        time.sleep(3.5)  # three rounds of asyncio's one-second accept pause
    finally:
        for sock in socks:
            sock.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
    assert wait_until(lambda: _accepted(d.port), timeout=10, what="accepting again")
    assert send_normal_mail(d.port, "after EMFILE") < 3.0
    d.stop()  # flushes the summary of what was counted since the first line
    lines = log_lines(d, "accept\\(\\) failed")
    assert 1 <= len(lines) <= 2, lines
    assert "Too many open files" in lines[0] and "max_connections" in lines[0]
    assert log_lines(d, "Traceback|out of system resource") == []


@pytest.mark.parametrize(
    ("peer", "client"),
    [
        (("192.0.2.7", 2525), "192.0.2.7"),
        (("2001:db8:1:2:aaaa::1", 2525, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb::9", 2525, 0, 0), "2001:db8:1:2::/64"),  # same /64: same client
        (("::ffff:192.0.2.7", 2525, 0, 0), "192.0.2.7"),
        (("fe80::1%eth0", 2525, 0, 2), "fe80::/64"),
        ("", "local"),
    ],
)
def test_per_client_counting_key(peer, client):
    assert client_of(peer) == client
