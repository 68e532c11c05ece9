"""Test helpers: a controllable clock, an aiosmtpd sink, config files, the daemon process, mail builders."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from aiosmtpd.controller import Controller

__all__ = ["Clock", "MaildeskProcess", "Sink", "deliver", "free_port", "make_mail", "outbox_mails", "send", "ticket_json", "wait_until", "write_config"]

ROOT = Path(__file__).resolve().parents[1]


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


class Clock:
    """An injectable clock: tests move time instead of sleeping."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


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


def write_config(directory: Path, *, port: int, smarthost: str | None = None, db_url: str | None = None,
                 addresses=("support@example.test", "billing@example.test"), extra: str = "",
                 files: dict[str, str] | None = None, shipped_config: bool = False, smtp: dict | None = None,
                 processing: dict | None = None, **mail) -> Path:
    """A maildesk.toml in ``directory``; ``files`` are written into its config/ directory
    (e.g. {"agents.toml": ...}); ``shipped_config`` copies the repository's config/ first;
    ``smtp`` and ``processing`` add keys to those tables (``smtp`` may change ``max_message_size``)."""
    import shutil

    directory.mkdir(parents=True, exist_ok=True)
    if shipped_config:
        shutil.copytree(ROOT / "config", directory / "config", dirs_exist_ok=True)
    for name, text in (files or {}).items():
        (directory / "config").mkdir(exist_ok=True)
        (directory / "config" / name).write_text(text)
    outbound = f'smarthost = "{smarthost}"\nretry_base = 0.5\nretry_max = 2\npoll_interval = 0.2' if smarthost else 'maildir = "var/sent"'
    mail_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in mail.items())
    smtp = {"max_message_size": 2000000, **(smtp or {})}
    smtp_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in smtp.items())
    processing_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in (processing or {}).items())
    text = f"""
[database]
url = "{db_url or 'sqlite:///var/maildesk.db'}"

[smtp]
host = "127.0.0.1"
port = {port}
{smtp_lines}

[mail]
addresses = {json.dumps(list(addresses))}
ticket_prefix = "MD"
support_name = "Example Support"
secret = "test-secret-not-for-production-0123456789"
{mail_lines}

[outbound]
{outbound}

[processing]
poll_interval = 0.2
{processing_lines}

[log]
level = "INFO"
{extra}
"""
    path = directory / "maildesk.toml"
    path.write_text(text)
    return path


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

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=30)


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


def deliver(desk, msg, *, rcpt=("support@example.test",), mail_from: str | None = None, source: str = "smtp"):
    """Accept and process one message in-process; returns its ProcessResult."""
    from email.utils import parseaddr

    from maildesk.ingest.intake import Intake, RawMail
    from maildesk.process.pipeline import process_pending

    raw = msg if isinstance(msg, bytes) else msg.as_bytes()
    if mail_from is None:
        mail_from = parseaddr(msg["From"])[1] if not isinstance(msg, bytes) else "sender@customer.test"
    inbox_id = Intake(desk.store, desk.clock).store_one(RawMail(raw, mail_from, tuple(rcpt), source))
    results = process_pending(desk, ids=[inbox_id])
    assert len(results) == 1, f"inbox {inbox_id} was not processed (already processed?)"
    return results[0]


def outbox_mails(desk, kind: str | None = None):
    """Queued/sent outgoing mail, parsed, oldest first."""
    from email import message_from_bytes, policy

    from sqlalchemy import select

    from maildesk.storage.models import Outbox

    with desk.store.read() as s:
        q = select(Outbox).order_by(Outbox.id)
        if kind:
            q = q.where(Outbox.kind == kind)
        return [message_from_bytes(r.raw, policy=policy.default) for r in s.scalars(q)]


def ticket_json(desk, number: int) -> dict:
    from maildesk.storage.models import Ticket
    from maildesk.tickets.views import ticket_detail

    with desk.store.read() as s:
        return ticket_detail(s, s.get(Ticket, number), desk.config.mail.ticket_prefix)
