"""Engine and session factory, transactions, and schema migrations (Alembic).

:func:`storage_error` is the boundary between the database driver's errors and the
one line an operator reads (no such database, needs an upgrade, locked, unreachable)."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from maildesk.errors import SchemaOutOfDate, StorageBusy, StorageError
from maildesk.storage import webmodels as _webmodels  # noqa: F401 - the web view's tables join the metadata
from maildesk.storage.writerlock import WriterLock, fcntl

__all__ = ["Store", "WriterLock", "existing_store", "open_store", "storage_error", "store_for"]

log = logging.getLogger("maildesk.store")
MIGRATIONS = Path(__file__).parent / "migrations"
_BUMP_STATE = text("INSERT INTO revisions (name, value) VALUES ('state', 1) "
                   "ON CONFLICT (name) DO UPDATE SET value = revisions.value + 1")
_STATE = text("SELECT value FROM revisions WHERE name = 'state'")


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

    def waiting(self) -> bool:
        return bool(self._waiters)

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
    # SQLite has one writer at a time: writers in this process queue here in arrival order,
    # then across processes on the WriterLock.
    write_lock: FairLock | contextlib.AbstractContextManager = field(default_factory=contextlib.nullcontext)
    writer: WriterLock | None = None
    origin: str = ""  # the config file that names this database, for error messages
    _checkpointed: float = 0.0

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self, priority: bool = False, changes_state: bool = True) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception. ``priority``:
        the listener's intake, whose writes go before background work's (WriterLock).
        ``changes_state=False``: the transaction only adds inbox rows or moves outbox rows
        along, nothing processing reads, so it leaves the ``state`` revision alone."""
        with self._writers_turn(priority):
            session = self.sessions()
            try:
                with session.begin():
                    yield session
                    if changes_state and self.is_sqlite:
                        session.execute(_BUMP_STATE)
            finally:
                session.close()

    @contextmanager
    def _writers_turn(self, priority: bool) -> Iterator[None]:
        """This process's turn (FairLock), then the database's (WriterLock, across processes)."""
        with self.write_lock, (self.writer.held(priority) if self.writer is not None else contextlib.nullcontext()):
            yield

    @contextmanager
    def rolled_back(self) -> Iterator[Store]:
        """A store whose every transaction is a savepoint inside one outer transaction on one
        connection, rolled back at the end whatever happens: work done on it is seen by its own
        later reads and changes nothing (``maildesk jobs run --dry-run``). Holds the write lock
        from start to end (on SQLite every other writer waits for it), so keep the work short."""
        with self._writers_turn(priority=False), self.engine.connect() as conn:
            outer = conn.begin()
            try:
                yield replace(self, sessions=sessionmaker(bind=conn, join_transaction_mode="create_savepoint",
                                                          expire_on_commit=False),
                              write_lock=contextlib.nullcontext(), writer=None)
            finally:
                outer.rollback()

    def state_revision(self, session: Session) -> int:
        """The ``state`` revision as ``session``'s transaction sees it (SQLite; 0 elsewhere)."""
        return (session.execute(_STATE).scalar() or 0) if self.is_sqlite else 0

    def priority_waiting(self) -> bool:
        """Should a long background transaction commit now? Yes when the intake waits at
        the gate (another process) or any writer of this process waits its turn."""
        if isinstance(self.write_lock, FairLock) and self.write_lock.waiting():
            return True
        return self.writer is not None and self.writer.priority_waiting()

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
            raise storage_error(exc, self.engine.url.render_as_string(hide_password=True), self.origin) from exc

    def check_schema(self) -> None:
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            state = "is empty" if current is None else f"is at revision {current}, the code needs {head}"
            raise SchemaOutOfDate(f"the database {state}; run `maildesk db upgrade` first")

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the database file (SQLite, with ``own_checkpoints``);
        a no-op when it was done less than a second ago.

        The bulk of the copy holds no lock. Under a steady stream of commits that alone never
        catches up (a commit lands while it copies, a reader is always on the WAL), SQLite
        never starts the WAL over and it grows by every page every commit writes; so once
        the WAL is over :data:`WAL_LIMIT` the rest is done in the writer's turn, after which
        the next commit starts the WAL from the beginning (and ``journal_size_limit`` gives
        the disk space back)."""
        if not self.is_sqlite or time.monotonic() - self._checkpointed < 1.0:
            return
        self._checkpointed = time.monotonic()
        with self.engine.connect() as conn:  # outside any transaction: the driver connection itself
            raw = conn.connection.driver_connection
            try:
                frames = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                if frames * _page_size(raw) > WAL_LIMIT:
                    self._restart_wal(raw)
            except sqlite3.Error as exc:  # the next one will do; never worth failing a step for
                log.debug("WAL checkpoint skipped: %s", exc)

    def _restart_wal(self, raw) -> None:
        """In the writer's turn, at the gate (so processing ends its read snapshots early, see
        :meth:`priority_waiting`): copy the rest and wait a moment for the readers still on
        the WAL, so that the next commit starts it over. Gives up after ``RESTART_WAIT_MS``."""
        with self._writers_turn(priority=True):
            raw.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            try:
                busy, frames, copied = raw.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                raw.execute("PRAGMA busy_timeout=30000")
        log.debug("WAL checkpoint in the writer's turn: %d of %d frames copied%s", copied, frames,
                  ", readers still on it" if busy else "")

    def dispose(self) -> None:
        self.engine.dispose()
        if self.writer is not None:
            self.writer.close()


WAL_LIMIT = 64 * 2**20  # bytes of WAL after which a checkpoint waits for the writer's turn to finish
RESTART_WAIT_MS = 100  # how long that checkpoint waits for readers (others' writes wait as long)


def _page_size(raw) -> int:
    return raw.execute("PRAGMA page_size").fetchone()[0]


def _private(db_file: str) -> None:
    """A database (and its WAL and shared memory) made by an older version, or copied in with
    a looser mode, is made readable by its owner only: it holds every mail."""
    for name in (db_file, f"{db_file}-wal", f"{db_file}-shm"):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)
        except OSError:  # missing, or not ours to change: the umask covers what we create
            pass


def open_store(url: str, *, sqlite_synchronous: str = "full", echo: bool = False, own_checkpoints: bool = False,
               create: bool = True, writes: bool = True) -> Store:
    """Create the engine; SQLite gets WAL, foreign keys, a busy timeout and the chosen fsync level.

    ``create=False``: a SQLite file that does not exist is :class:`SchemaOutOfDate`, and
    neither it nor its directory is created. ``writes=False``: a reader, which takes no
    :class:`WriterLock` (and so creates no lock files).

    ``own_checkpoints``: the daemon's processes never copy the WAL into the database as
    part of a commit (SQLite's automatic checkpoint, which would run while the writer lock
    is held and make the intake wait); the delivery worker calls :meth:`Store.checkpoint`
    between its steps instead, which holds no lock for the bulk of the copy."""
    kwargs: dict = {"echo": echo, "future": True}
    db_file = None
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            if not create and not Path(path).is_file():
                raise SchemaOutOfDate(f"there is no database at {path}; run `maildesk db upgrade` first (it creates it)")
            Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            db_file = path
            _private(path)
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
            if own_checkpoints:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")  # a WAL started over shrinks to this
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # IMMEDIATE takes the write lock up front: no deadlock-prone lock upgrades
            # between the daemon and a `maildesk ingest` running beside it. Reads opt out.
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

    lock = FairLock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    writer = WriterLock(db_file) if db_file and writes and fcntl is not None else None
    return Store(engine, sessionmaker(engine, expire_on_commit=False), lock, writer)


def store_for(config, own_checkpoints: bool = False, *, create: bool = True, writes: bool = True) -> Store:
    """The store a Config describes."""
    store = open_store(config.database.url, sqlite_synchronous=config.database.sqlite_synchronous,
                       echo=config.database.echo, own_checkpoints=own_checkpoints, create=create, writes=writes)
    store.origin = str(config.path)
    return store


def existing_store(config, *, writes: bool = True) -> Store:
    """The store of a database that exists and is up to date, for commands that are not
    ``db upgrade``: creates nothing, raises :class:`SchemaOutOfDate` or :class:`StorageError`."""
    store = store_for(config, create=False, writes=writes)
    try:
        store.check_schema()
    except BaseException:
        store.dispose()
        raise
    return store


_UNREACHABLE = ("connection", "server closed", "unable to open", "disk i/o", "could not translate host", "timeout expired")


def storage_error(exc: SQLAlchemyError, url: str = "", origin: str = "") -> StorageError:
    """A driver error as one line: the schema is missing, the database is locked, or it
    cannot be reached (the driver's first line, which names host and port). ``url``
    (without its password) and ``origin`` (the config file) make the line more precise."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    first = lines[0].strip() if lines else type(orig).__name__
    low = str(orig).lower()
    if "no such table" in low or type(orig).__name__ == "UndefinedTable":
        return SchemaOutOfDate(f"the database has no maildesk tables ({first}); run `maildesk db upgrade` first")
    if "database is locked" in low or "database is busy" in low:
        return StorageBusy(f"the database is locked by another writer ({first}); try again in a moment")
    where = f" {url}" if url else ""
    unreachable = isinstance(exc, (OperationalError, InterfaceError)) and (
        getattr(exc, "statement", None) is None or any(w in low for w in _UNREACHABLE))
    if not unreachable:
        return StorageError(f"the database{where} refused the statement: {first}")
    in_file = f" in {origin}" if origin else ""
    return StorageError(f"cannot reach the database{where}: {first}; is it running, and is [database] url{in_file} right?")
