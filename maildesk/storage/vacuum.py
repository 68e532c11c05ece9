"""``maildesk db vacuum``: remove the bytes of sent mail that are due, then give the space back.

SQLite: ``VACUUM`` rewrites the database file without its free pages (in the writers' turn,
so the daemon may run meanwhile; its writes wait until it is done), then the WAL is
checkpointed and truncated. PostgreSQL: ``VACUUM (ANALYZE)`` on maildesk's tables makes
the space of removed rows reusable without locking them; ``full=True`` runs ``VACUUM FULL``,
which returns it to the operating system but locks each table while it is rewritten.
Sizes are the database file and its WAL (SQLite) or the tables with their indexes and
TOAST (PostgreSQL, the current schema).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from sqlalchemy import text

from maildesk.outgoing.outbox import purge_sent
from maildesk.storage.models import Base
from maildesk.storage.store import Store

__all__ = ["database_bytes", "vacuum"]

_PG_SIZE = text("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'")


def database_bytes(store: Store) -> int:
    if store.is_sqlite:
        path = store.engine.url.database or ""
        return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))
    with store.engine.connect() as conn:
        return int(conn.execute(_PG_SIZE).scalar() or 0)


def vacuum(store: Store, now: datetime, keep_sent_days: float, full: bool = False) -> dict:
    """Purge the sent mail due at ``now``, reclaim space; the figures for the operator."""
    before = database_bytes(store)
    purged, purged_bytes = purge_sent(store, now - timedelta(days=keep_sent_days))
    if store.is_sqlite:
        with store._writers_turn(priority=False), store.engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.execute("VACUUM")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        tables = ", ".join(f'"{t}"' for t in sorted(Base.metadata.tables))
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"VACUUM ({'FULL, ' if full else ''}ANALYZE) {tables}"))
    return {"purged": purged, "purged_bytes": purged_bytes, "before": before, "after": database_bytes(store)}
