"""IMAP intake against a real Dovecot on loopback (tests/services/dovecot.py).

The daemon tests run ``maildesk run`` as a subprocess; the in-process ones drive
:class:`ImapSource` directly to provoke what a real server rarely does on cue (a message
that fails to fetch, a changed UIDVALIDITY).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import stat
import time

import pytest
from imapclient import IMAPClient

from maildesk.config.credentials import Secret
from maildesk.config.load import ImapConfig
from maildesk.ingest.imap import ImapSource, UidMark
from maildesk.ingest.intake import Intake
from maildesk.storage.models import ImapState
from tests.support.config import write_config
from tests.support.mail import make_mail, send
from tests.support.servers import MaildeskProcess, free_port, wait_until

pytestmark = pytest.mark.services

SEEN = b"\\Seen"


def db_rows(proc: MaildeskProcess, sql: str) -> list[tuple]:
    con = sqlite3.connect(proc.config.parent / "var" / "maildesk.db", timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def tickets(proc: MaildeskProcess) -> list[dict]:
    return proc.json("tickets", "list", "--limit", "5000")


def wait_for_tickets(proc: MaildeskProcess, n: int, timeout: float = 20.0) -> list[dict]:
    """Poll the database cheaply, then answer with the CLI's view."""
    wait_until(lambda: db_rows(proc, "select count(*) from tickets")[0][0] >= n, timeout=timeout, interval=0.1,
               what=f"{n} ticket(s)")
    return tickets(proc)


def wait_for_log(proc: MaildeskProcess, text: str, timeout: float = 10.0) -> None:
    wait_until(lambda: text in proc.log.read_text(), timeout=timeout, interval=0.05, what=f"log line {text!r}")


# -- pure: the UID mark ---------------------------------------------------------------------

@pytest.mark.parametrize(("last", "done", "present", "committed", "expected"), [
    (0, set(), [1, 2, 3], [1, 2, 3], 3),            # everything stored
    (0, set(), [1, 2, 3], [1, 3], 1),               # 2 failed: the mark stops below it
    (1, {3}, [2, 3, 4], [2, 4], 4),                 # 2 retried fine, 3 stored earlier
    (5, set(), [7, 9], [], 6),                      # nothing stored, 6 never existed
    (5, set(), [], [], 5),                          # nothing there: the mark never goes back
    (0, set(), [4, 8, 9], [4, 8], 8),               # 9 still waiting for the next batch
])
def test_uid_mark_only_passes_committed_uids(last, done, present, committed, expected):
    mark = UidMark(7, last)
    mark.done = set(done)
    assert mark.advance(present, committed) == expected
    mark.commit(committed, expected)
    assert all(u > expected for u in mark.done)


def test_uid_mark_forgets_failures_of_vanished_messages():
    mark = UidMark(1, 0)
    mark.failed = {2: 3, 5: 1}
    mark.done = {3}
    assert mark.pending([1, 2, 3, 4]) == [1, 2, 4]
    assert mark.failed == {2: 3}


# -- the daemon against Dovecot -------------------------------------------------------------

def test_backlog_becomes_tickets_marked_seen_after_commit(daemon_factory, account):
    subjects = account.append(f"Backlog {i}" for i in range(6))
    broken = account.toml("broken", password="wrong")  # fails on its own, harms nobody
    d = daemon_factory(extra=account.toml("support", queue="helpdesk", batch_size=4) + broken)
    rows = wait_for_tickets(d, 6)
    assert sorted(t["subject"] for t in rows) == sorted(subjects)
    assert {t["queue"] for t in rows} == {"helpdesk"}
    assert {r[0] for r in db_rows(d, "select source from inbox")} == {"imap:support"}
    send(d.port, make_mail(subject="Through SMTP meanwhile"))
    wait_for_tickets(d, 7)
    assert f"imap=broken 127.0.0.1:{account.server.imap_port}: login failed: [AUTHENTICATIONFAILED]" in d.log.read_text()
    wait_until(lambda: all(SEEN in f for f in account.uids_and_flags().values()), what="all messages \\Seen")
    wait_until(lambda: db_rows(d, "select uidvalidity > 0, last_uid from imap_state where mailbox = 'support'") == [(1, 6)],
               what="last UID 6 saved")


def test_new_mail_arrives_through_idle_and_stop_is_prompt(daemon_factory, account):
    d = daemon_factory(extra=account.toml("idle", poll_interval=600.0))
    wait_for_log(d, "waiting with IDLE")
    time.sleep(0.3)  # let the first (empty) round finish and IDLE start
    began = time.monotonic()
    account.append(["Arrived while idling"])
    rows = wait_for_tickets(d, 1, timeout=5)
    assert rows[0]["subject"] == "Arrived while idling"
    assert time.monotonic() - began < 5  # polling every 600 s could not have done it
    began = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - began < 5
    assert "imap=idle stopped" in d.log.read_text()


def test_after_move_empties_inbox_into_processed_folder(daemon_factory, account):
    subjects = account.append(f"Move me {i}" for i in range(5))
    d = daemon_factory(extra=account.toml("mover", after="move", move_to="Processed", batch_size=2))
    rows = wait_for_tickets(d, 5)
    assert sorted(t["subject"] for t in rows) == sorted(subjects)
    wait_until(lambda: account.count("INBOX") == 0, what="an empty INBOX")
    assert account.count("Processed") == 5


def test_sigkill_mid_backlog_loses_and_duplicates_nothing(daemon_factory, account):
    total = 300
    subjects = [f"Bulk {i:03d}" for i in range(total)]
    with account.client() as imap:
        for s in subjects:
            imap.append("INBOX", make_mail(subject=s).as_bytes())
    d = daemon_factory(extra=account.toml("bulk", batch_size=5))
    wait_until(lambda: db_rows(d, "select count(*) from inbox")[0][0] >= 40, timeout=20, interval=0.02,
               what="part of the backlog")
    d.kill()
    stored = db_rows(d, "select count(*) from inbox")[0][0]
    assert stored < total, "the backlog was finished before the kill; the test proves nothing"
    d.start()
    rows = wait_for_tickets(d, total, timeout=40)
    assert len(rows) == total
    assert sorted(t["subject"] for t in rows) == subjects
    assert db_rows(d, "select count(*), count(distinct sha256) from inbox") == [(total, total)]
    wait_until(lambda: db_rows(d, "select last_uid from imap_state")[0][0] == total, what="last UID 300")
    wait_until(lambda: all(SEEN in f for f in account.uids_and_flags().values()), what="all \\Seen")


def test_dovecot_restart_is_survived(daemon_factory, account, dovecot):
    d = daemon_factory(extra=account.toml("restart", poll_interval=600.0))
    account.append(["Before the restart"])
    wait_for_tickets(d, 1)
    wait_for_log(d, "waiting with IDLE")
    mark = len(d.log.read_text())
    dovecot.restart()
    account.append(["After the restart"])
    rows = wait_for_tickets(d, 2, timeout=15)
    assert {t["subject"] for t in rows} == {"Before the restart", "After the restart"}
    log = d.log.read_text()[mark:]
    assert f"imap=restart 127.0.0.1:{dovecot.imap_port}: connection lost" in log and "reconnecting in" in log


def test_messages_a_person_marked_seen_are_not_missed(daemon_factory, account):
    account.append(["Read by a colleague 1", "Unread 2", "Read by a colleague 3"])
    with account.client() as imap:
        uids = imap.search(["ALL"])
        imap.add_flags([uids[0], uids[2]], [SEEN])
    account.append(["Already seen on arrival"], flags=[SEEN])
    d = daemon_factory(extra=account.toml("people"))
    wait_for_tickets(d, 4)
    wait_for_log(d, "waiting with IDLE")
    account.append(["Seen while the daemon runs"], flags=[SEEN])
    rows = wait_for_tickets(d, 5, timeout=5)
    assert len(rows) == 5


def test_imap_check_reports_working_and_broken_mailboxes(tmp_path, account):
    good = account.toml("good", after="move", move_to="Done")
    bad = account.toml("broken", password="wrong-password")
    proc = MaildeskProcess(write_config(tmp_path / "both", port=free_port(), extra=good + bad))
    proc.cli("db", "upgrade")
    account.append(["one", "two"])
    res = proc.cli("imap", "check", check=False)
    out = res.stdout.decode()
    assert res.returncode == 1, out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(("good", "broken"))}
    assert lines["good"].split()[3:5] == ["ok", "ok"]  # login, folder
    assert "yes" in lines["good"] and " 2 " in lines["good"]  # IDLE, MOVE, 2 messages
    assert "error" in lines["broken"]
    assert "broken: login failed" in out and "AUTHENTICATIONFAILED" in out
    assert "1 of 2 mailbox(es) ok; failing: broken" in out

    res = proc.cli("imap", "check", "good", "--json", check=False)  # only the working one
    assert res.returncode == 0, res.stdout.decode()
    [row] = json.loads(res.stdout)
    assert row["login"] == "ok" and row["folder"] == "ok" and row["messages"] == 2 and row["idle"] == "yes"
    assert row["last_uid"] == "none yet"


def test_xoauth2_token_command_is_rerun_when_the_token_is_rejected(daemon_factory, account, tmp_path):
    # Dovecot 2.3 checks an XOAUTH2 bearer token against the passdb like a password, so an
    # account whose password is the token stands in for Gmail / Microsoft 365.
    dovecot, user, token = account.server, account.user, account.password
    calls = tmp_path / "calls"
    script = tmp_path / "token.sh"
    script.write_text(f'#!/bin/sh\necho run >> "{calls}"\n'
                      f'if [ "$(wc -l < "{calls}")" -le 1 ]; then echo ya29.expired-token; else echo {token}; fi\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    table = (f'\n[[imap]]\nname = "oauth"\nhost = "127.0.0.1"\nport = {dovecot.imap_port}\nsecurity = "none"\n'
             f'username = "{user}"\noauth2_token = {{ command = "{script}", ttl = 3000 }}\nretry_base = 0.2\n')
    with dovecot.client(user, token) as imap:
        imap.append("INBOX", b"From: jane@customer.test\r\nTo: support@example.test\r\nSubject: token test\r\n"
                             b"Message-ID: <tok1@customer.test>\r\n\r\nhello\r\n")
    d = daemon_factory(extra=table)
    rows = wait_for_tickets(d, 1)
    assert rows[0]["subject"] == "token test"
    assert calls.read_text().count("run") == 2  # first token rejected, the command ran once more
    assert "XOAUTH2 token rejected; fetching a fresh one" in d.log.read_text()


# -- in process: provoked failures ----------------------------------------------------------

def _box(account, **options) -> ImapConfig:
    base = dict(name="inproc", host=account.server.host, port=account.server.imap_port, security="none",
                username=account.user, password=Secret("value", account.password, "test"), poll_interval=0.2,
                retry_base=0.1, retry_max=0.5, timeout=10.0)
    return ImapConfig(**{**base, **options})


def _run(source: ImapSource, until, timeout: float = 10.0, what: str = "condition"):
    asyncio.run(source.start())
    try:
        return wait_until(until, timeout=timeout, what=what)
    finally:
        asyncio.run(source.stop())


def _state(desk, box) -> tuple[int, int] | None:
    with desk.store.read() as session:
        row = session.get(ImapState, (box.name, box.folder))
        return (row.uidvalidity, row.last_uid) if row else None


def _stored(desk) -> list[bytes]:
    from sqlalchemy import select

    from maildesk.storage.models import InboxMail

    with desk.store.read() as session:
        return list(session.scalars(select(InboxMail.raw).select_from(InboxMail).order_by(InboxMail.id)))


@pytest.fixture
def imap_log():
    """The IMAP source's log lines (the maildesk logger may not propagate to pytest's)."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("maildesk.ingest.imap")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_message_that_fails_to_fetch_is_skipped_then_retried(desk, account, imap_log):
    account.append(["first", "flaky", "third", "fourth"])
    refusals = {"left": 2}
    box = _box(account, batch_size=10)
    seen_during_failure = []

    def connector(cfg):
        from maildesk.ingest.imapconn import connect

        client = connect(cfg)
        real_fetch = client.fetch

        def fetch(uids, items, *args, **kwargs):
            data = real_fetch(uids, items, *args, **kwargs)
            if "BODY.PEEK[]" in items and 2 in data and refusals["left"]:
                refusals["left"] -= 1
                seen_during_failure.append(_state(desk, box))
                data = {u: v for u, v in data.items() if u != 2}
            return data

        client.fetch = fetch
        return client

    source = ImapSource(box, Intake(desk.store), connector=connector)
    _run(source, lambda: len(_stored(desk)) == 4 and _state(desk, box)[1] == 4, what="all four stored")
    subjects = [raw.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].strip() for raw in _stored(desk)]
    assert subjects == [b"first", b"third", b"fourth", b"flaky"]  # the rest was not held up
    assert seen_during_failure[1][1] == 1  # while UID 2 failed, the mark stayed below it
    assert any("UID 2 in INBOX could not be fetched (failure 2)" in line for line in imap_log)


def test_a_crash_between_commit_and_seen_is_repaired_at_the_next_start(desk, account):
    from imapclient.exceptions import IMAPClientAbortError

    from maildesk.ingest.imapconn import connect

    def connector(cfg):  # the connection always dies when \Seen is about to be set
        client = connect(cfg)

        def drop(*args, **kwargs):
            raise IMAPClientAbortError("connection dropped")

        client.add_flags = drop
        return client

    account.append(["crash 1", "crash 2", "crash 3"])
    box = _box(account)
    _run(ImapSource(box, Intake(desk.store), connector=connector), lambda: len(_stored(desk)) == 3, what="stored")
    assert not any(SEEN in f for f in account.uids_and_flags().values())
    assert _state(desk, box)[1] == 0  # the saved mark waits for \Seen
    _run(ImapSource(box, Intake(desk.store)), lambda: all(SEEN in f for f in account.uids_and_flags().values()),
         what="all \\Seen after the restart")
    assert len(_stored(desk)) == 3 and _state(desk, box)[1] == 3


def test_uidvalidity_change_rereads_the_folder_without_duplicates(desk, account, imap_log):
    with account.client(None) as imap:
        imap.create_folder("Support")
    account.append(["old 1", "old 2"], folder="Support")
    box = _box(account, folder="Support")
    _run(ImapSource(box, Intake(desk.store)), lambda: len(_stored(desk)) == 2, what="two stored")
    first = _state(desk, box)
    with account.client(None) as imap:  # the folder is recreated: same mail, new UIDVALIDITY
        raws = [v[b"BODY[]"] for _, v in sorted(_fetch_all(imap, "Support").items())]
        imap.unselect_folder()
        imap.delete_folder("Support")
        imap.create_folder("Support")
        for raw in raws:
            imap.append("Support", raw)
    account.append(["new 3"], folder="Support")
    _run(ImapSource(box, Intake(desk.store)), lambda: len(_stored(desk)) == 3 and _state(desk, box)[1] == 3,
         what="the new message, once")
    assert _state(desk, box)[0] != first[0]
    assert any("UIDVALIDITY of Support changed" in line for line in imap_log)


@pytest.mark.parametrize("after", ["move", "delete"])
def test_without_idle_and_move_it_polls_and_copies_deletes_expunges(desk, account, after):
    from maildesk.ingest.imapconn import connect

    def refuse(*args, **kwargs):
        raise AssertionError("not offered by this server")

    def connector(cfg):
        client = connect(cfg)
        caps = tuple(c for c in client.capabilities() if c not in (b"IDLE", b"MOVE"))
        client.capabilities = lambda: caps
        client.idle = client.move = refuse
        return client

    account.append(["poll 1", "poll 2", "poll 3"])
    box = _box(account, after=after, move_to="Done" if after == "move" else None, poll_interval=0.3, batch_size=2)
    source = ImapSource(box, Intake(desk.store), connector=connector)
    asyncio.run(source.start())
    try:
        wait_until(lambda: len(_stored(desk)) == 3 and account.count("INBOX") == 0, what="the backlog handled")
        account.append(["poll 4"])  # found by the next poll
        wait_until(lambda: len(_stored(desk)) == 4 and account.count("INBOX") == 0, what="the polled message")
    finally:
        asyncio.run(source.stop())
    assert _state(desk, box)[1] == 4
    if after == "move":
        assert account.count("Done") == 4


@pytest.mark.parametrize(("options", "message"), [
    ({"after": "move"}, "after = \"move\" needs move_to"),
    ({"oauth2_token": "{ command = \"get-token\" }"}, "set password or oauth2_token, not both"),
    ({"idle_timeout": 3600}, "expected 1-1740 seconds"),
    ({"after": "move", "move_to": "INBOX"}, "move_to must differ from folder"),
    ({"security": "ssl"}, "expected one of tls, starttls, none"),
])
def test_imap_config_errors_name_the_key(tmp_path, options, message):
    from maildesk.config.load import load_config
    from maildesk.errors import ConfigError

    lines = "\n".join(f"{k} = {v}" if isinstance(v, str) and v.startswith("{") else f"{k} = {json.dumps(v)}"
                      for k, v in options.items())
    extra = f'\n[[imap]]\nname = "support"\nhost = "imap.example.test"\nusername = "support"\npassword = "x"\n{lines}\n'
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, port=free_port(), extra=extra))
    assert message in str(info.value) and "[imap]" in str(info.value)


def _fetch_all(imap: IMAPClient, folder: str) -> dict:
    imap.select_folder(folder, readonly=True)
    return imap.fetch(imap.search(["ALL"]), ["BODY.PEEK[]"])
