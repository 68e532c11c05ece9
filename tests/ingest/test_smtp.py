"""The SMTP/LMTP handler over a real socket: 451 when storing fails, LMTP per-recipient replies."""

from __future__ import annotations

import asyncio
import smtplib
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP

from maildesk.config.load import load_config
from maildesk.ingest.intake import Intake
from maildesk.ingest.smtp import SmtpHandler
from maildesk.storage.store import open_store
from tests.support.config import write_config
from tests.support.mail import make_mail
from tests.support.servers import free_port


class _LMTPController(Controller):
    def factory(self):
        return LMTP(self.handler)


def _serve(tmp_path, upgrade: bool, lmtp: bool = False):
    config = load_config(write_config(tmp_path, port=free_port()))
    store = open_store(config.database.url)
    if upgrade:
        store.upgrade()
    intake = Intake(store)
    handler = SmtpHandler(config, intake, "lmtp" if lmtp else "smtp")
    ctl = (_LMTPController if lmtp else Controller)(handler, hostname="127.0.0.1", port=free_port())
    ctl.start()
    asyncio.run_coroutine_threadsafe(intake.start(), ctl.loop).result(5)
    return ctl, store


def test_451_when_the_message_cannot_be_stored(tmp_path):
    ctl, _store = _serve(tmp_path, upgrade=False)  # no tables: every insert fails
    try:
        with smtplib.SMTP("127.0.0.1", ctl.port) as s, pytest.raises(smtplib.SMTPDataError) as info:
            s.send_message(make_mail())
        assert info.value.smtp_code == 451 and b"4.3.0" in info.value.smtp_error
    finally:
        ctl.stop()


def test_lmtp_answers_once_per_recipient(tmp_path):
    ctl, _store = _serve(tmp_path, upgrade=True, lmtp=True)
    try:
        # smtplib's LMTP reads one reply after DATA; speak the protocol by hand to see both.
        with socket.create_connection(("127.0.0.1", ctl.port), timeout=10) as sock:
            f = sock.makefile("rwb")

            def cmd(line: bytes) -> bytes:
                f.write(line + b"\r\n")
                f.flush()
                return f.readline()

            assert f.readline().startswith(b"220")
            f.write(b"LHLO test\r\n")
            f.flush()
            while not (line := f.readline()).startswith(b"250 "):
                assert line.startswith(b"250-")
            assert cmd(b"MAIL FROM:<jane@customer.test>").startswith(b"250")
            assert cmd(b"RCPT TO:<support@example.test>").startswith(b"250")
            assert cmd(b"RCPT TO:<billing@example.test>").startswith(b"250")
            assert cmd(b"DATA").startswith(b"354")
            f.write(make_mail().as_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n") + b"\r\n.\r\n")
            f.flush()
            replies = [f.readline(), f.readline()]
            assert all(r.startswith(b"250 2.0.0") for r in replies), replies
    finally:
        ctl.stop()
