"""Fixtures for the IMAP tests: one real Dovecot per test module, a fresh account per test.

Without Dovecot the tests skip with the reason; with ``MAILDESK_REQUIRE_SERVICES=1``
(CI, after installing it) they fail instead.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest

from tests.conftest import service_missing
from tests.services.dovecot import Dovecot
from tests.support.mail import make_mail

ACCOUNTS = 30  # created before the start: Dovecot notices new ones only after a second


@pytest.fixture(scope="module")
def dovecot():
    reason = Dovecot.missing()
    if reason:
        service_missing(reason)
    users = {f"box{i}-{uuid.uuid4().hex[:6]}@example.test": uuid.uuid4().hex for i in range(ACCOUNTS)}
    try:
        server = Dovecot.start_new(users)
    except (OSError, RuntimeError) as exc:
        service_missing(f"Dovecot could not start: {exc}")
    server.unused = list(users)
    yield server
    server.destroy()


@dataclass
class Account:
    """A mailbox on the test Dovecot, plus helpers to fill and inspect it."""

    server: Dovecot
    user: str
    password: str

    def client(self, folder: str | None = "INBOX"):
        return self.server.client(self.user, self.password, folder)

    def append(self, subjects, folder: str = "INBOX", flags=()) -> list[str]:
        """APPEND one customer mail per subject; returns the subjects."""
        subjects = list(subjects)
        with self.client(None) as imap:
            for subject in subjects:
                msg = make_mail(subject=subject, body=f"Body of {subject}.\n")
                imap.append(folder, msg.as_bytes(), flags=flags)
        return subjects

    def uids_and_flags(self, folder: str = "INBOX") -> dict[int, tuple]:
        with self.client(None) as imap:
            imap.select_folder(folder, readonly=True)
            return imap.get_flags(imap.search(["ALL"]))

    def count(self, folder: str = "INBOX") -> int:
        with self.client(None) as imap:
            return imap.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"]

    def toml(self, name: str = "support", *, password: str | None = None, **options) -> str:
        """An ``[[imap]]`` table for this account; options override the test defaults."""
        values = {"name": name, "host": self.server.host, "port": self.server.imap_port, "security": "none",
                  "username": self.user, "password": self.password if password is None else password,
                  "poll_interval": 1.0, "retry_base": 0.2, "retry_max": 1.0, "timeout": 10.0, **options}
        return "\n[[imap]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


@pytest.fixture
def account(dovecot) -> Account:
    """A fresh, empty mailbox of its own for each test."""
    user = dovecot.unused.pop(0)
    return Account(dovecot, user, dovecot.users[user])
