"""``maildesk ingest`` on SQLite without loading SQLAlchemy.

An MTA's pipe transport starts one process per message, so start-up is the cost: SQLAlchemy
and the models take most of a second to import. For a SQLite database this module stores
the raw message with the standard library alone, exactly as :meth:`Intake.store_batch`
would (same columns, same value formats, same dedupe by SHA-256, the same writer lock with
the intake's precedence), and commits before the command exits 0.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime

from maildesk.errors import StorageError
from maildesk.storage.writerlock import WriterLock, fcntl

__all__ = ["sqlite_path", "store_sqlite"]


def sqlite_path(url: str) -> str | None:
    """The database file of a ``sqlite:///path`` URL (None for anything else, or in-memory)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.split("///", 1)[1].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def store_sqlite(path: str, raw: bytes, mail_from: str, rcpt_to: tuple[str, ...], *, synchronous: str = "full",
                 source: str = "pipe", now: datetime | None = None) -> int:
    """Commit one raw message into the inbox; returns its id (the existing one for identical bytes)."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    digest = hashlib.sha256(raw).hexdigest()
    lock = WriterLock(path) if fcntl is not None else None
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            conn.execute("PRAGMA busy_timeout=30000")
            if lock is not None:
                with lock.held(priority=True):
                    return _insert(conn, raw, digest, mail_from, rcpt_to, source, now)
            return _insert(conn, raw, digest, mail_from, rcpt_to, source, now)
        finally:
            conn.close()
            if lock is not None:
                lock.close()
    except sqlite3.Error as exc:
        hint = "; run `maildesk db upgrade`" if "no such table" in str(exc) else ""
        raise StorageError(f"could not store the message: {type(exc).__name__}: {exc}{hint}") from exc


def _insert(conn, raw, digest, mail_from, rcpt_to, source, now) -> int:
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute("SELECT id FROM inbox WHERE sha256 = ?", (digest,)).fetchone()
        if found is not None:
            inbox_id = found[0]
        else:
            inbox_id = conn.execute(
                "INSERT INTO inbox (received_at, source, mail_from, rcpt_to, size, sha256, status, attempts, queue) "
                "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, NULL) RETURNING id",
                (now.isoformat(sep=" ", timespec="microseconds"), source, mail_from, json.dumps(list(rcpt_to)), len(raw),
                 digest)).fetchone()[0]
            conn.execute("INSERT INTO inbox_raw (inbox_id, raw) VALUES (?, ?)", (inbox_id, raw))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return inbox_id
