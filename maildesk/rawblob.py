"""The raw bytes of an inbox row moved in pieces on SQLite (incremental blob I/O), not as one bound value.

Bound as a parameter, a 25 MB mail costs SQLite two copies when it is inserted (the bound
value, then the record built from it) and the prepared statement, kept in the driver's
statement cache, holds on to the bound copy until its next use; read as a column it costs
SQLite's assembled copy and Python's. Here the row is inserted with ``zeroblob(size)`` and
the bytes written into it through ``sqlite3.Connection.blobopen`` in pieces of
:data:`PIECE` bytes, and read back with one ``Blob.read`` straight into the Python bytes.
Other databases (PostgreSQL) bind and fetch the value as usual.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from maildesk.models import InboxMail

__all__ = ["INSERT_ZEROED", "PIECE", "read_raw", "uses_blob_io", "write_raw"]

PIECE = 1 << 20  # bytes written per call
_INBOX = InboxMail.__table__
# the row with ``raw`` zero-filled to ``raw_size`` bytes, written afterwards by write_raw()
INSERT_ZEROED = (insert(_INBOX).values(raw=func.zeroblob(bindparam("raw_size")))
                 .returning(_INBOX.c.id, sort_by_parameter_order=True))
_RAW = select(InboxMail.raw).where(InboxMail.id == bindparam("id"))
_SIZE = select(func.length(InboxMail.raw)).where(InboxMail.id == bindparam("id"))


def _driver(session: Session):
    return session.connection().connection.driver_connection


def uses_blob_io(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite" and hasattr(_driver(session), "blobopen")


def write_raw(session: Session, inbox_id: int, raw) -> None:
    """Fill the zero-filled ``raw`` of row ``inbox_id`` (inserted by :data:`INSERT_ZEROED`) with ``raw``."""
    view = memoryview(raw)
    with _driver(session).blobopen("inbox", "raw", inbox_id) as blob:
        for start in range(0, len(view), PIECE):
            blob.write(view[start:start + PIECE])


def read_raw(session: Session, inbox_id: int) -> bytes | None:
    """Row ``inbox_id``'s raw bytes (``b""`` for NULL), or None when there is no such row."""
    if not uses_blob_io(session):
        found = session.execute(_RAW, {"id": inbox_id}).first()
        return None if found is None else (found[0] or b"")
    size = session.execute(_SIZE, {"id": inbox_id}).first()
    if size is None:
        return None
    if not size[0]:
        return b""
    with _driver(session).blobopen("inbox", "raw", inbox_id, readonly=True) as blob:
        return blob.read()
