"""Claim inbox rows before parsing them, when several instances share one PostgreSQL database.

Every processing worker reads the oldest pending rows. Without a claim taken first, the
workers of N instances would all read and parse the same rows (the CPU-heavy part) and
only then find, at ``FOR UPDATE SKIP LOCKED``, that another had them: N times the parsing
for the same work. :class:`InboxClaim` takes a session-level advisory try-lock
(``pg_try_advisory_lock``) per row on a connection of its own, held while the worker parses
and applies its rows: the next worker looks further (a window of several batches of the
oldest pending rows) and takes the following ones. The locks go
with the connection, so a worker that dies leaves nothing claimed. The processing
transactions still lock the rows they write (``FOR UPDATE SKIP LOCKED``); the claim only
keeps work from being done twice. SQLite has one processing worker: nothing to claim.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from maildesk.storage.store import Store

__all__ = ["NAMESPACE_SQL", "InboxClaim"]

# The first key of the two-key advisory locks on inbox rows: one per schema, since advisory
# locks are per database and two desks may live in two schemas of one database.
NAMESPACE_SQL = "hashtext('maildesk-inbox:' || current_schema())"
_TAKE = text("SELECT k FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS t(k, n) "
             f"WHERE pg_try_advisory_lock({NAMESPACE_SQL}, CAST(k % 2147483648 AS integer)) ORDER BY n")
_GIVE = text(f"SELECT pg_advisory_unlock({NAMESPACE_SQL}, CAST(k % 2147483648 AS integer)) "
             "FROM unnest(CAST(:ids AS bigint[])) AS t(k)")


class InboxClaim:
    """The advisory locks one worker holds on inbox rows (PostgreSQL), or nothing (SQLite)."""

    def __init__(self, store: Store):
        self.store = store
        self._conn: Connection | None = None
        self.held: list[int] = []

    def take(self, ids: list[int]) -> list[int]:
        """Those of ``ids`` no other worker holds, now held by this one, in the order given."""
        if self.store.is_sqlite or not ids:
            return list(ids)
        if self._conn is None:
            self._conn = self.store.engine.connect()
        got = list(self._conn.execute(_TAKE, {"ids": list(ids)}).scalars())
        self._conn.commit()
        self.held.extend(got)
        return got

    def take_first(self, ids: list[int], want: int) -> list[int]:
        """The first ``want`` of ``ids`` (oldest first) no other worker holds, now held by this
        one: tried a slice at a time, so rows past those needed are not held for nothing."""
        if self.store.is_sqlite:
            return list(ids[:want])
        got: list[int] = []
        start = 0
        while len(got) < want and start < len(ids):
            step = want - len(got)
            got += self.take(ids[start:start + step])
            start += step
        return got

    def give_back(self, ids: list[int]) -> None:
        """Release the claims on ``ids`` (rows held but not going to be handled this round)."""
        if self._conn is None or not ids:
            return
        self._conn.execute(_GIVE, {"ids": list(ids)})
        self._conn.commit()
        gone = set(ids)
        self.held = [i for i in self.held if i not in gone]

    def release(self) -> None:
        """Give back every row this claim holds (a session lock outlives transactions)."""
        conn, self._conn, self.held = self._conn, None, []
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock_all()"))
            conn.commit()
        finally:
            conn.close()

    def __enter__(self) -> InboxClaim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
