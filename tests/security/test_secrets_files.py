"""Secrets and files (issue 13, point 6): a weak ``[mail] secret`` is refused by every
command; what maildesk creates is private (0600 files in 0700 directories, whatever the
umask it was started with); INFO logs show no full address, command arguments included.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys

import pytest

from tests.security.helpers import agent_reply, notification_for, show, strong_secret
from tests.support.mail import make_mail, send
from tests.support.servers import wait_until


def _refused(code: int, err: str) -> bool:
    """Exit 78 (EX_CONFIG) with a line naming the file and key (a line number may sit between) and how to make one."""
    return code == 78 and re.search(r"maildesk\.toml(:\d+)?: \[mail\] secret", err) is not None and "secrets" in err


@pytest.mark.parametrize("secret", ["a", "a" * 40], ids=["short", "repetitive"])
def test_weak_secret_is_refused(desk_factory, secret):
    d = desk_factory(agents=False, run=False)
    d.cli("db", "upgrade")  # with the strong secret, so that only the secret can stop `run` below
    d.config.write_text(strong_secret(d.config.read_text(), secret))
    problems = []
    for args in (("rules", "check"), ("inbox", "list")):
        res = d.cli(*args, check=False)
        if not _refused(res.returncode, res.stderr.decode()):
            problems.append(f"maildesk {' '.join(args)} exited {res.returncode}: {res.stderr.decode()[-300:]!r}")
    proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(d.config), "run"], env=d.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        listening = wait_until(lambda: proc.poll() is not None or _listening(d.port), timeout=20, what="maildesk run to exit or listen")
        if proc.poll() is None and listening:
            problems.append(f"maildesk run started with the secret {secret!r} and listens on {d.port}")
        else:
            err = proc.stderr.read().decode()
            if not _refused(proc.returncode, err):
                problems.append(f"maildesk run exited {proc.returncode}: {err[-300:]!r}")
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=20)
    assert not problems, "\n".join(problems)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _mode(path) -> str:
    return oct(stat.S_IMODE(os.stat(path).st_mode))


@pytest.fixture
def open_umask():
    """Start maildesk under the common umask 022: it must tighten it itself."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_created_files_are_private(desk_factory, open_umask):
    d = desk_factory(agents=False, maildir=True, db_upgrade=True)  # maildesk itself creates var/ and the database
    send(d.port, make_mail(subject="Printer on fire"))
    var = d.config.parent / "var"
    sent = var / "sent"
    mails = wait_until(lambda: [p for p in (sent / "new").glob("*") if p.is_file()], what="the acknowledgement in var/sent/new")
    modes = {"var": _mode(var), "sent": _mode(sent), **{f"sent/{sub}": _mode(sent / sub) for sub in ("new", "cur", "tmp")}}
    modes |= {p.name: _mode(p) for p in var.iterdir() if p.is_file()}  # maildesk.db, -wal, -shm, secret, ...
    modes |= {f"sent/new/{p.name}": _mode(p) for p in mails}
    assert {"maildesk.db", "maildesk.db-wal", "maildesk.db-shm"} <= set(modes), f"expected the WAL database files, got {sorted(modes)}"
    wrong = {name: mode for name, mode in modes.items() if mode != ("0o700" if name in ("var", "sent", "sent/new", "sent/cur", "sent/tmp") else "0o600")}
    assert not wrong, f"files readable by other local users (want 0600 files in 0700 directories): {wrong}"


def test_info_log_redacts_command_arguments(desk_factory, sink):
    d = desk_factory()
    send(d.port, make_mail(subject="Printer on fire"))
    note = notification_for(sink, "alice", event="new_ticket")
    send(d.port, agent_reply(note, "alice", "#cc boss.person@elsewhere.test"))
    wait_until(lambda: any(e["kind"] == "cc" for e in show(d)["events"]), what="the #cc command applied")
    d.stop()  # flush and close the log
    log = d.log.read_text()
    assert "processed" in log
    leaked = [line for line in log.splitlines() if "boss.person@elsewhere.test" in line or "jane@customer.test" in line]
    assert not leaked, "full addresses in the INFO log:\n" + "\n".join(leaked)
