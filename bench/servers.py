"""The processes a benchmark run needs, each in its own process so the load generator's
CPU does not disturb them (the CI machine has 2 cores):

* ``python bench/servers.py sink PORT``: the smarthost. An aiosmtpd server that keeps
  nothing but one JSON line per received mail on stdout (arrival time on the system-wide
  monotonic clock, In-Reply-To, X-Maildesk-Ticket, Message-ID, Reply-To), read by
  :class:`SinkProcess`.
* ``python bench/servers.py null PORT``: the do-nothing ceiling, an aiosmtpd server
  configured like maildesk's listener whose DATA handler answers 250 and stores nothing.
* :class:`DaemonProcess`: ``maildesk db upgrade`` then ``maildesk run`` on a config
  written by :func:`write_config`, with its peak RSS from ``/proc``.
* :class:`DbMonitor`: a read-only connection counting inbox rows by status.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

__all__ = ["DaemonProcess", "DbMonitor", "NullProcess", "SinkProcess", "free_port", "write_config"]

ROOT = Path(__file__).resolve().parent.parent
MAX_SIZE = 26_214_400  # the shipped default [smtp] max_message_size (25 MiB)
_FIELDS = re.compile(rb"^(in-reply-to|x-maildesk-ticket|message-id|reply-to|auto-submitted):[ \t]*(.*)$", re.I | re.M)
_ADDR = re.compile(r"<([^<>]+)>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# -- the server side (run as a script) ---------------------------------------------------
class _Null:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 OK"


class _Sink:
    def __init__(self):
        self.out = sys.stdout

    async def handle_DATA(self, server, session, envelope):
        now = time.monotonic()
        head = (envelope.original_content or b"").split(b"\r\n\r\n", 1)[0]
        head = head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
        found = {k.lower().decode(): v.strip().decode("utf-8", "replace") for k, v in _FIELDS.findall(head)}
        reply_to = _ADDR.findall(found.get("reply-to", ""))
        record = {"t": now, "irt": found.get("in-reply-to", ""), "ticket": found.get("x-maildesk-ticket", ""),
                  "message_id": found.get("message-id", ""), "reply_to": reply_to[0] if reply_to else "",
                  "rcpt": list(envelope.rcpt_tos), "auto": found.get("auto-submitted", "")}
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()
        return "250 2.0.0 OK"


async def _serve(kind: str, port: int) -> None:
    from aiosmtpd.smtp import SMTP

    handler = _Sink() if kind == "sink" else _Null()
    factory = partial(SMTP, handler, data_size_limit=MAX_SIZE, hostname="bench.example.test", ident="bench",
                      enable_SMTPUTF8=True, decode_data=False)
    server = await asyncio.get_running_loop().create_server(factory, host="127.0.0.1", port=port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


# -- the parent side -------------------------------------------------------------------------
class _ServerProcess:
    kind = ""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), self.kind, str(self.port)],
                                     stdout=subprocess.PIPE if self.kind == "sink" else subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class NullProcess(_ServerProcess):
    kind = "null"


class SinkProcess(_ServerProcess):
    """The smarthost; ``acks`` maps an original Message-ID to the first automatic reply to
    the customer answering it; ``received`` counts every mail (notifications included)."""

    kind = "sink"

    def __init__(self):
        super().__init__()
        self.acks: dict[str, dict] = {}
        self.received = 0
        self.last_t = 0.0
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, name="sink-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            rec = json.loads(line)
            # the acknowledgement goes to the customer; notifications to agents (example.test)
            # answer the same Message-ID but are not counted as acknowledgements
            ack = rec["auto"].lower().startswith("auto-replied") and any(
                not r.lower().endswith("@example.test") for r in rec["rcpt"])
            with self.cond:
                self.received += 1
                self.last_t = rec["t"]
                if ack:
                    for irt in _ADDR.findall(rec["irt"]):
                        self.acks.setdefault(f"<{irt}>", rec)
                self.cond.notify_all()

    def ack_for(self, message_id: str) -> dict | None:
        return self.acks.get(message_id)

    def wait_count(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.received < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


def write_config(directory: Path, *, port: int, smarthost_port: int, db_url: str | None = None) -> Path:
    """A config with the shipped defaults, except: the listener port, the smarthost (the sink),
    the database location, and the operator config (rules, agents, SLA) of this checkout."""
    directory.mkdir(parents=True, exist_ok=True)
    url = db_url or f"sqlite:///{directory / 'var' / 'maildesk.db'}"
    text = f"""
[database]
url = "{url}"

[smtp]
host = "127.0.0.1"
port = {port}
max_message_size = {MAX_SIZE}

[mail]
addresses = ["support@example.test", "billing@example.test"]
ticket_prefix = "MD"
support_name = "Example Support"
secret = "bench-secret-not-for-production-0123456789"

[outbound]
smarthost = "127.0.0.1:{smarthost_port}"

[paths]
config_dir = "{ROOT / 'config'}"
data_dir = "{directory / 'var'}"
"""
    path = directory / "maildesk.toml"
    path.write_text(text)
    return path


class DaemonProcess:
    """``maildesk run`` as a real subprocess (after ``maildesk db upgrade``)."""

    def __init__(self, directory: Path, smarthost_port: int, db_url: str | None = None):
        self.dir = directory
        self.port = free_port()
        self.db_url = db_url or f"sqlite:///{directory / 'var' / 'maildesk.db'}"
        self.config = write_config(directory, port=self.port, smarthost_port=smarthost_port, db_url=db_url)
        self.log = directory / "daemon.log"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict:
        return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

    def cli(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        res = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(self.config), *args], input=input,
                             capture_output=True, env=self.env(), timeout=300)
        if res.returncode != 0:
            raise RuntimeError(f"maildesk {' '.join(args)} exited {res.returncode}: {res.stderr.decode()[-2000:]}")
        return res

    def start(self) -> DaemonProcess:
        self.cli("db", "upgrade")
        self._logfile = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.launched = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(self.config), "run"],
                                     stdout=self._logfile, stderr=subprocess.STDOUT, env=self.env())
        wait_port(self.port, self.proc, log=self.log)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status(self, field: str) -> int:
        """A /proc/PID/status memory field (VmRSS, VmHWM) in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logfile.close()
        code, self.proc = self.proc.returncode, None
        return code

    def errors(self, limit: int = 5) -> list[str]:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return [line for line in lines if " ERROR " in line or "Traceback" in line][:limit]


class DbMonitor:
    """Counts inbox rows per status through its own read-only connection."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        if db_url.startswith("sqlite"):
            import sqlite3

            path = db_url.split("///", 1)[1]
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False)
        else:
            import psycopg

            self.conn = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def query(self, sql: str) -> list[tuple]:
        cur = self.conn.cursor()
        try:
            cur.execute(sql)
            return list(cur.fetchall())
        finally:
            cur.close()

    def counts(self) -> dict[str, int]:
        return dict(self.query("SELECT status, count(*) FROM inbox GROUP BY status"))

    def unsent(self) -> int:
        """Outgoing mail not yet handed to the smarthost: notices not yet rendered, outbox rows queued or sending."""
        notices = self.query("SELECT count(*) FROM notices WHERE done_at IS NULL")[0][0]
        outbox = self.query("SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')")[0][0]
        return notices + outbox

    def close(self) -> None:
        self.conn.close()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], int(sys.argv[2])))
