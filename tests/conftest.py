"""Shared fixtures: configs in tmp dirs, SQLite and PostgreSQL stores, an aiosmtpd sink, in-process
desks with the shared agents directory (tests/support/agents.py),
and the real daemon (``maildesk run``) as a subprocess on a free port.

Servers: tests that need PostgreSQL (127.0.0.1:5432, database ``test``, or
``$MAILDESK_TEST_PG_URL``) skip with the reason when it is unreachable, and fail
instead when ``MAILDESK_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest

from tests.support.agents import AGENTS
from tests.support.clock import Clock
from tests.support.config import write_config
from tests.support.database import migrated_sqlite, sqlite_file
from tests.support.servers import MaildeskProcess, Sink, free_port

REQUIRE_SERVICES = os.environ.get("MAILDESK_REQUIRE_SERVICES") == "1"
PG_URL = os.environ.get("MAILDESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def service_missing(reason: str):
    """Skip, or fail under MAILDESK_REQUIRE_SERVICES=1."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (MAILDESK_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


def _pg_reachable() -> str | None:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_available() -> bool:
    problem = _pg_reachable()
    return problem is None


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL schema for one test, as a URL whose search_path points at it."""
    problem = _pg_reachable()
    if problem:
        service_missing(problem)
    from sqlalchemy import create_engine, text

    schema = f"md_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Run a storage test on SQLite and, when reachable, on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/maildesk.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock():
    return Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
def sink():
    s = Sink()
    s.start()
    yield s
    s.stop()


@pytest.fixture
def config_path(tmp_path):
    """A config for in-process tests: SQLite in tmp, maildir outbound."""
    return write_config(tmp_path, port=free_port())


def migrated_desk(config_file, clock):
    """build_desk on a migrated database with the directory synced: a SQLite file that does
    not exist yet is copied from the migrated template (tests/support/database.py), any
    other database is migrated."""
    from maildesk.config.load import load_config
    from maildesk.daemon.build import build_desk, sync_directory

    config = load_config(config_file)
    path = sqlite_file(config.database.url)
    copied = path is not None and not path.exists()
    if copied:
        migrated_sqlite(path)
    desk = build_desk(config, clock=clock)
    if not copied:
        desk.store.upgrade()
    sync_directory(desk)
    return desk


@pytest.fixture
def desk(config_path, clock):
    """The composition root's Desk on a migrated SQLite database, with an injectable clock."""
    desk = migrated_desk(config_path, clock)
    yield desk
    desk.store.dispose()


@pytest.fixture
def agents_desk_factory(tmp_path, clock):
    """``make(agents=AGENTS, *, clock=None, files=None, **write_config_kwargs)``: an in-process
    Desk on a migrated SQLite database whose config/agents.toml is ``agents`` (the shared
    directory of tests/support/agents.py unless given); ``files`` adds other config files, the
    clock defaults to the ``clock`` fixture. The first desk lives in ``tmp_path`` itself."""
    desks = []

    def make(agents: str = AGENTS, *, clock=None, files: dict | None = None, **config):
        directory = tmp_path if not desks else tmp_path / f"desk{len(desks)}"
        cfg = write_config(directory, port=free_port(), files={"agents.toml": agents, **(files or {})}, **config)
        desk = migrated_desk(cfg, clock or default_clock)
        desks.append(desk)
        return desk

    default_clock = clock
    yield make
    for desk in desks:
        desk.store.dispose()


@pytest.fixture
def agents_desk(agents_desk_factory):
    """An in-process Desk with the shared agents directory: alice (the lead) and bob in team support."""
    return agents_desk_factory()


@pytest.fixture
def daemon_factory(tmp_path):
    """``start(**write_config_kwargs)``: a running daemon on a migrated database (SQLite:
    a copy of the migrated template; PostgreSQL: ``maildesk db upgrade``). At teardown the
    instances still running are killed (SIGKILL): tests that care about a graceful stop
    call ``stop()`` themselves and check it."""
    procs: list[MaildeskProcess] = []

    def start(**config) -> MaildeskProcess:
        d = tmp_path / f"daemon{len(procs)}"
        d.mkdir()
        path = write_config(d, port=free_port(), **config)
        proc = MaildeskProcess(path)
        db = config.get("db_url") or "sqlite:///var/maildesk.db"
        if db == "sqlite:///var/maildesk.db":
            migrated_sqlite(d / "var" / "maildesk.db")
        else:
            proc.cli("db", "upgrade")
        proc.start()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.discard()


@pytest.fixture
def daemon(daemon_factory, sink):
    """The real daemon on a free port, delivering to the ``sink`` fixture as its smarthost."""
    return daemon_factory(smarthost=f"127.0.0.1:{sink.port}")

