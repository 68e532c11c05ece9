"""SQLite's one writer, shared by the processes of maildesk on one database file (POSIX flock).

No SQLAlchemy here: ``maildesk ingest`` (a process per message) uses it without loading it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

try:
    import fcntl
except ImportError:  # not on POSIX: SQLite's own busy handler decides who writes next
    fcntl = None

__all__ = ["WriterLock", "fcntl"]


class WriterLock:
    """SQLite's one writer, shared by every process of maildesk on one database file.

    SQLite makes a second writer poll (sleeping up to 100 ms between tries) and does not
    care who waited first. Every maildesk process takes an exclusive ``flock`` on
    ``<database>.lock`` around its write transactions instead, so a waiting writer runs
    the moment the lock is free. The listener's intake also holds ``<database>.gate``
    while it waits or writes (``priority=True``); background work (processing, delivery)
    passes the gate before it starts a transaction and, between messages, ends its
    transaction early when :meth:`priority_waiting` says the intake is at the gate. So
    a burst being accepted never waits for more than one message of processing.
    """

    def __init__(self, path: str):
        self.path = path
        self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._gate_fd = os.open(f"{path}.gate", os.O_RDWR | os.O_CREAT, 0o600)
        self._gate_probe = os.open(f"{path}.gate", os.O_RDWR)  # a lock of its own: probing never touches ours

    @contextmanager
    def held(self, priority: bool = False) -> Iterator[None]:
        if priority:
            fcntl.flock(self._gate_fd, fcntl.LOCK_EX)
        else:  # wait while the intake is at the gate; never stand in it while waiting for the lock
            fcntl.flock(self._gate_fd, fcntl.LOCK_SH)
            fcntl.flock(self._gate_fd, fcntl.LOCK_UN)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            if priority:
                fcntl.flock(self._gate_fd, fcntl.LOCK_UN)

    def priority_waiting(self) -> bool:
        """True while the intake waits for (or holds) the write lock."""
        try:
            fcntl.flock(self._gate_probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._gate_probe, fcntl.LOCK_UN)
        return False

    def close(self) -> None:
        for fd in (self._lock_fd, self._gate_fd, self._gate_probe):
            with contextlib.suppress(OSError):
                os.close(fd)
