"""One reader per IMAP mailbox across instances that share a PostgreSQL database.

A PostgreSQL session-level advisory lock, held on a connection of its own for as long
as the reader runs: a second instance stands by and takes over when the first one stops
or dies (the lock goes with its connection). The lock has two keys, the schema and the
mailbox name: advisory locks are per database, and desks in two schemas of one database
each read their own mailbox. SQLite serves one machine; there the lease always succeeds.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.engine import Connection

from maildesk.storage.store import Store

__all__ = ["MailboxLease"]

_NAMESPACE = "hashtext('maildesk-imap:' || current_schema())"
_TAKE = text(f"SELECT pg_try_advisory_lock({_NAMESPACE}, :k)")
_GIVE = text(f"SELECT pg_advisory_unlock({_NAMESPACE}, :k)")


class MailboxLease:
    def __init__(self, store: Store, name: str):
        self.store = store
        digest = hashlib.sha256(f"maildesk-imap:{name}".encode()).digest()
        self.key = int.from_bytes(digest[:4], "big", signed=True)  # the second key: an int4
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if self.store.is_sqlite or self._conn is not None:
            return True
        conn = self.store.engine.connect()
        try:
            got = conn.execute(_TAKE, {"k": self.key}).scalar()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(_GIVE, {"k": self.key})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None
