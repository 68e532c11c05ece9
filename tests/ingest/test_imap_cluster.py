"""Two ``maildesk run`` instances on one PostgreSQL database, both configured to read one
Dovecot mailbox (docs/scaling.md): one reads, the other stands by; SIGKILL the reader in the
middle of a backlog and the other takes over within a bounded time (its ``poll_interval``
plus a few seconds) and reads what was left and what arrives after, losing and duplicating
nothing."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from tests.support import MaildeskProcess, free_port, make_mail, wait_until, write_config

pytestmark = pytest.mark.services

TOTAL = 300
TAKEOVER_WITHIN = 15.0  # seconds: poll_interval (1 s) + the restart of a session, on a loaded machine


def test_the_standby_takes_over_a_killed_reader(tmp_path, pg_url, account):
    subjects = [f"Shared {i:03d}" for i in range(TOTAL)]

    def append(some):
        with account.client() as imap:
            for s in some:
                imap.append("INBOX", make_mail(subject=s, message_id=f"<shared{s[-3:]}@customer.test>").as_bytes())

    append(subjects[:TOTAL // 2])  # a backlog; the other half arrives after the kill
    nodes = [MaildeskProcess(write_config(tmp_path / f"node{i}", port=free_port(), db_url=pg_url,
                                          extra=account.toml("shared", batch_size=5, poll_interval=1.0)))
             for i in range(2)]
    nodes[0].cli("db", "upgrade")
    engine = create_engine(pg_url)

    def q(sql):
        with engine.connect() as conn:
            return conn.execute(text(sql)).all()

    try:
        for node in nodes:
            node.start()
        reading = lambda node: "connected to" in node.log.read_text()  # noqa: E731
        wait_until(lambda: any(reading(n) for n in nodes), timeout=20, what="one instance reading the mailbox")
        holder, standby = (nodes[0], nodes[1]) if reading(nodes[0]) else (nodes[1], nodes[0])
        wait_until(lambda: "standing by to take over" in standby.log.read_text(), timeout=20, what="the other standing by")
        assert not reading(standby)
        wait_until(lambda: q("SELECT count(*) FROM inbox")[0][0] >= 40, timeout=30, interval=0.02, what="part of the backlog")
        holder.kill_group()
        killed = time.monotonic()
        append(subjects[TOTAL // 2:])
        wait_until(lambda: reading(standby), timeout=TAKEOVER_WITHIN, interval=0.05, what="the standby reading the mailbox")
        took = time.monotonic() - killed
        assert took < TAKEOVER_WITHIN

        wait_until(lambda: q("SELECT count(*) FROM tickets")[0][0] >= TOTAL and
                   not q("SELECT 1 FROM inbox WHERE status = 'pending' LIMIT 1"), timeout=90, what="the whole backlog processed")
        # Nothing lost, nothing stored or processed twice.
        assert q("SELECT count(*), count(DISTINCT sha256) FROM inbox") == [(TOTAL, TOTAL)]
        assert q("SELECT DISTINCT status FROM inbox") == [("processed",)]
        assert sorted(s for (s,) in q("SELECT subject FROM tickets")) == subjects
        wait_until(lambda: q("SELECT last_uid FROM imap_state")[0][0] == TOTAL, what=f"last UID {TOTAL}")
    finally:
        engine.dispose()
        for node in nodes:
            node.stop()
