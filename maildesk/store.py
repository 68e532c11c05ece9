"""Engine and session factory, transactions, and schema migrations (Alembic)."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from maildesk.errors import SchemaOutOfDate, StorageError

__all__ = ["Store", "open_store", "store_for"]

MIGRATIONS = Path(__file__).parent / "migrations"


class FairLock:
    """A first-come-first-served lock: a waiting writer is handed the lock directly when
    the holder releases it, instead of polling like SQLite's busy handler (which sleeps
    up to 100 ms between tries). Not reentrant."""

    def __init__(self):
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def __enter__(self):
        with self._mutex:
            if not self._held:
                self._held = True
                return self
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()
        return self

    def __exit__(self, *exc):
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # ownership passes on; _held stays True
            else:
                self._held = False


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]
    # SQLite has one writer at a time: writers in this process queue here in arrival order.
    write_lock: FairLock | contextlib.AbstractContextManager = field(default_factory=contextlib.nullcontext)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception."""
        with self.write_lock:
            session = self.sessions()
            try:
                with session.begin():
                    yield session
            finally:
                session.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work; on SQLite it takes no write lock (WAL readers never block)."""
        session = self.sessions()
        try:
            with session.begin():
                session.connection(execution_options={"sqlite_begin": "DEFERRED"})
                yield session
        finally:
            session.close()

    def alembic_config(self):
        from alembic.config import Config as AlembicConfig  # imported on use: `maildesk ingest` starts faster

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        return cfg

    def upgrade(self) -> tuple[str | None, str]:
        """Apply every pending migration; returns (revision before, revision after)."""
        from alembic import command

        before = self.current_revision()
        try:
            command.upgrade(self.alembic_config(), "head")
        except SQLAlchemyError as exc:
            raise StorageError(f"database upgrade failed: {exc}") from exc
        return before, self.head_revision()

    def head_revision(self) -> str:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot reach the database: {exc}") from exc

    def check_schema(self) -> None:
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            state = "is empty" if current is None else f"is at revision {current}, the code needs {head}"
            raise SchemaOutOfDate(f"the database {state}; run `maildesk db upgrade` first")

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, sqlite_synchronous: str = "full", echo: bool = False) -> Store:
    """Create the engine; SQLite gets WAL, foreign keys, a busy timeout and the chosen fsync level."""
    kwargs: dict = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(f"cannot use database URL {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        sync = sqlite_synchronous.upper()

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below decide
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # IMMEDIATE takes the write lock up front: no deadlock-prone lock upgrades
            # between the daemon and a `maildesk ingest` running beside it. Reads opt out.
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

    lock = FairLock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    return Store(engine, sessionmaker(engine, expire_on_commit=False), lock)


def store_for(config) -> Store:
    """The store a Config describes."""
    return open_store(config.database.url, sqlite_synchronous=config.database.sqlite_synchronous,
                      echo=config.database.echo)
