"""Servers the tests run: the daemon (``maildesk run``) as a subprocess, and an aiosmtpd
sink standing for the smarthost and the internet. Dovecot lives in :mod:`tests.services.dovecot`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from tests.support.config import ROOT

__all__ = ["MaildeskProcess", "Sink", "free_port", "wait_until"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class _Collect:
    def __init__(self, sink: Sink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.sink.rcpt_reply(address)
        if code:
            return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.data_reply:
            return self.sink.data_reply
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)  # a slow smarthost: the 250 comes late
        with self.sink.cond:
            self.sink.messages.append(envelope)
            self.sink.cond.notify_all()
        return "250 OK"


class Sink:
    """An aiosmtpd server collecting what maildesk sends (the smarthost / the internet);
    ``smtputf8=True`` offers SMTPUTF8 (RFC 6531), as Postfix does by default."""

    def __init__(self, port: int | None = None, *, smtputf8: bool = False):
        self.port = port or free_port()
        self.messages: list = []
        self.cond = threading.Condition()
        self.data_reply: str | None = None  # e.g. "451 try later" / "550 no"
        self.data_delay: float = 0.0  # seconds before each DATA reply (a slow smarthost)
        self.rcpt_reply = lambda address: None
        self.controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=smtputf8)

    def start(self):
        self.controller.start()

    def stop(self):
        self.controller.stop()

    def message_ids(self) -> list[str]:
        """The Message-ID of every mail accepted so far, in order (duplicates included)."""
        from email.parser import BytesHeaderParser

        with self.cond:
            envelopes = list(self.messages)
        return [str(BytesHeaderParser().parsebytes(e.original_content)["Message-ID"] or "").strip() for e in envelopes]

    def parsed(self):
        from email import message_from_bytes, policy

        return [message_from_bytes(e.original_content, policy=policy.default) for e in self.messages]

    def wait_for(self, predicate=lambda m: True, timeout: float = 30.0, count: int = 1):
        """The parsed messages matching ``predicate`` once there are ``count`` of them."""
        from email import message_from_bytes, policy

        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hits = [m for m in (message_from_bytes(e.original_content, policy=policy.default) for e in self.messages)
                        if predicate(m)]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} matching message(s) at the sink, got {len(hits)}")
                self.cond.wait(left)


class MaildeskProcess:
    """``maildesk run`` as a real subprocess, plus a CLI runner on the same config."""

    def __init__(self, config: Path):
        self.config = config
        self.port = int(next(line.split("=")[1] for line in config.read_text().splitlines() if line.startswith("port")))
        self.proc: subprocess.Popen | None = None
        self.log = config.parent / "daemon.log"

    def env(self):
        return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

    def cli(self, *args, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(self.config), *args], input=input,
                             capture_output=True, env=self.env(), timeout=120)
        if check and res.returncode != 0:
            raise AssertionError(f"maildesk {' '.join(args)} exited {res.returncode}:\n{res.stderr.decode()}")
        return res

    def json(self, *args):
        return json.loads(self.cli(*args, "--json").stdout)

    def start(self, timeout: float = 20):
        self.logfile = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(self.config), "run"],
                                     stdout=self.logfile, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"daemon did not listen on {self.port}:\n{self.log.read_text()}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logfile.close()
        code, self.proc = self.proc.returncode, None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def kill_group(self) -> None:
        """SIGKILL the whole instance at once: the daemon and its workers (its own process group)."""
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.logfile.close()
        self.proc = None

    def discard(self) -> None:
        """End the instance fast, without a graceful stop (fixture teardown): SIGKILL its
        process group (what still runs of it), then release what this object holds."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):  # also workers left behind by a daemon that died
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.logfile.close()
        self.proc = None

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=30)
