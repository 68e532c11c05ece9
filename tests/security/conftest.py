"""Fixtures of the security suite: the real daemon with a strong secret, agents and an
``[auth]`` table, delivering to the ``sink`` fixture (tests/conftest.py) or to a maildir."""

from __future__ import annotations

import pytest

from tests.security.helpers import AGENTS, auth_section, strong_secret
from tests.support.config import write_config
from tests.support.database import migrated_sqlite
from tests.support.servers import MaildeskProcess, free_port


@pytest.fixture
def desk_factory(tmp_path, sink):
    """``start(agents=True, auth=None, maildir=False, db_upgrade=False, **write_config_kwargs)``:
    a migrated, running daemon. ``auth`` is a dict for ``[auth]``; ``maildir=True`` delivers to
    var/sent instead of the sink. The database is a copy of the migrated template
    (tests/support/database.py); ``db_upgrade=True`` runs ``maildesk db upgrade`` instead, for
    tests about what it creates. Teardown kills what still runs (no graceful stop)."""
    procs: list[MaildeskProcess] = []

    def start(*, agents: bool = True, auth: dict | None = None, maildir: bool = False, run: bool = True, db_upgrade: bool = False,
              **config) -> MaildeskProcess:
        d = tmp_path / f"desk{len(procs)}"
        d.mkdir()
        files = {"agents.toml": AGENTS} if agents else None
        extra = config.pop("extra", "") + ("\n" + auth_section(**auth) if auth else "")
        smarthost = None if maildir else f"127.0.0.1:{sink.port}"
        path = write_config(d, port=free_port(), smarthost=smarthost, files=files, extra=extra, **config)
        path.write_text(strong_secret(path.read_text()))
        proc = MaildeskProcess(path)
        procs.append(proc)
        if run:
            if db_upgrade or config.get("db_url"):
                proc.cli("db", "upgrade")
            else:
                migrated_sqlite(d / "var" / "maildesk.db")
            proc.start()
        return proc

    yield start
    for proc in procs:
        proc.discard()
