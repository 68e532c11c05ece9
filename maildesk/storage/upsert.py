"""``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike, written now.

:func:`write_ignore` is what both :func:`maildesk.tickets.state.insert_ignore` (outside a
processing batch) and :class:`maildesk.storage.batch.Batch` (when it is flushed) use. The
statement is built once per dialect and table and executed with parameters.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from maildesk.storage.models import Blob
from maildesk.storage.rawblob import store_large_blobs

__all__ = ["write_ignore"]

_INSERT_IGNORE: dict[tuple[str, object], object] = {}


def write_ignore(session: Session, table, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING of ``rows`` into ``table`` now, batch or not."""
    if table is Blob.__table__:
        rows = store_large_blobs(session, rows)  # SQLite: large attachments in pieces, no bound copy kept
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    stmt = _INSERT_IGNORE.get((dialect, table))
    if stmt is None:
        stmt = (postgresql if dialect == "postgresql" else sqlite).insert(table).on_conflict_do_nothing()
        _INSERT_IGNORE[(dialect, table)] = stmt
    session.execute(stmt, rows[0] if len(rows) == 1 else rows)
