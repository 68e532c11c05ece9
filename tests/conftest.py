"""Shared fixtures: configs in tmp dirs, SQLite and PostgreSQL stores, an aiosmtpd sink,
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

from tests.support import Clock, MaildeskProcess, Sink, free_port, write_config

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


@pytest.fixture
def desk(config_path, clock):
    """The composition root's Desk on a migrated SQLite database, with an injectable clock."""
    from maildesk.config.load import load_config
    from maildesk.daemon.build import build_desk, sync_directory

    desk = build_desk(load_config(config_path), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    yield desk
    desk.store.dispose()


@pytest.fixture
def daemon_factory(tmp_path):
    procs: list[MaildeskProcess] = []

    def start(**config) -> MaildeskProcess:
        d = tmp_path / f"daemon{len(procs)}"
        d.mkdir()
        proc = MaildeskProcess(write_config(d, port=free_port(), **config))
        proc.cli("db", "upgrade")
        proc.start()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
def daemon(daemon_factory, sink):
    """The real daemon on a free port, delivering to the ``sink`` fixture as its smarthost."""
    return daemon_factory(smarthost=f"127.0.0.1:{sink.port}")

