"""Large values written and read in pieces on SQLite (incremental blob I/O): the raw bytes of an
accepted mail (``inbox_raw``), and attachment contents of 1 MiB or more (``blobs``).

Bound as a parameter, a 25 MB mail costs SQLite two copies when it is inserted (the bound
value, then the record built from it) and the prepared statement, kept in the driver's
statement cache, holds on to the bound copy until its next use; read as a column it costs
SQLite's assembled copy and Python's. On SQLite the row is inserted with
``zeroblob(size)`` (``raw`` is its last column, so SQLite does not build the zeros in
memory) and the bytes written into it through ``sqlite3.Connection.blobopen`` in pieces
of :data:`PIECE` bytes; they are read back with one ``Blob.read`` straight into the
Python bytes. Attachments (``blobs.data``, also the last column) are inserted the same way
when they are :data:`PIECE` bytes or more. Other databases (PostgreSQL) bind and fetch the
values as usual.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, literal_column, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from maildesk.storage.models import Blob, InboxRaw

__all__ = ["PIECE", "read_raw", "store_large_blobs", "store_raw"]

PIECE = 1 << 20  # bytes written per call
_TABLE = InboxRaw.__table__
_INSERT = insert(_TABLE)
_INSERT_ZEROED = insert(_TABLE).values(raw=func.zeroblob(bindparam("size")))
_RAW = select(InboxRaw.raw).where(InboxRaw.inbox_id == bindparam("id"))
_SIZE = select(func.length(InboxRaw.raw)).where(InboxRaw.inbox_id == bindparam("id"))
_SHAS = bindparam("shas", expanding=True)
_BLOB_ROWIDS = select(Blob.sha256, literal_column("blobs.rowid")).where(Blob.sha256.in_(_SHAS))
_BLOB_ZEROED = sqlite.insert(Blob.__table__).values(data=func.zeroblob(bindparam("length"))).on_conflict_do_nothing()


def _driver(session: Session):
    return session.connection().connection.driver_connection


def _blob_io(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite" and hasattr(_driver(session), "blobopen")


def store_raw(session: Session, rows: list[tuple[int, bytes]]) -> None:
    """Insert the raw bytes of new inbox rows, given as (inbox id, bytes)."""
    if not rows:
        return
    if not _blob_io(session):
        session.execute(_INSERT, [{"inbox_id": inbox_id, "raw": raw} for inbox_id, raw in rows])
        return
    session.execute(_INSERT_ZEROED, [{"inbox_id": inbox_id, "size": len(raw)} for inbox_id, raw in rows])
    for inbox_id, raw in rows:
        _write(session, "inbox_raw", "raw", inbox_id, raw)  # inbox_id is the rowid


def store_large_blobs(session: Session, rows: list[dict]) -> list[dict]:
    """On SQLite, insert the ``blobs`` rows (sha256, size, data) whose data is :data:`PIECE`
    bytes or more, unless already there, the data written in pieces; returns the rows left
    for an ordinary insert (all of them on other databases)."""
    if not any(len(r["data"]) >= PIECE for r in rows) or not _blob_io(session):
        return rows
    large = {r["sha256"]: r for r in rows if len(r["data"]) >= PIECE}
    present = {sha for sha, _ in session.execute(_BLOB_ROWIDS, {"shas": list(large)}).all()}
    new = {sha: r for sha, r in large.items() if sha not in present}
    if new:
        session.execute(_BLOB_ZEROED, [{"sha256": sha, "size": r["size"], "length": len(r["data"])} for sha, r in new.items()])
        for sha, rowid in session.execute(_BLOB_ROWIDS, {"shas": list(new)}).all():
            _write(session, "blobs", "data", rowid, new[sha]["data"])
    return [r for r in rows if len(r["data"]) < PIECE]


def _write(session: Session, table: str, column: str, rowid: int, data) -> None:
    """Fill the zero-filled ``column`` of row ``rowid`` with ``data``, :data:`PIECE` bytes at a time."""
    if not data:
        return
    view = memoryview(data)
    with _driver(session).blobopen(table, column, rowid) as blob:
        for start in range(0, len(view), PIECE):
            blob.write(view[start:start + PIECE])


def read_raw(session: Session, inbox_id: int) -> bytes | None:
    """Inbox row ``inbox_id``'s raw bytes, or None when it has none."""
    if not _blob_io(session):
        return session.execute(_RAW, {"id": inbox_id}).scalar()
    size = session.execute(_SIZE, {"id": inbox_id}).scalar()
    if size is None:
        return None
    if not size:
        return b""
    with _driver(session).blobopen("inbox_raw", "raw", inbox_id, readonly=True) as blob:
        return blob.read()
