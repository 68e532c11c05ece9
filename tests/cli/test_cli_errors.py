"""The command line fails in one line with a sysexits code, never with a traceback, and
read-only commands create nothing. Every test runs the real CLI as a subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.config import write_config
from tests.support.database import migrated_sqlite
from tests.support.mail import make_mail, send
from tests.support.servers import MaildeskProcess, free_port

READ_ONLY = [("tickets", "list"), ("tickets", "show", "MD-1"), ("inbox", "list"), ("outbox", "list"), ("outbox", "show", "1"),
             ("report",), ("jobs", "list"), ("db", "status"), ("events", "list")]
NEEDS_DATABASE = [*READ_ONLY, ("outbox", "flush"), ("jobs", "run"), ("inbox", "retry", "--all"), ("outbox", "retry", "--all")]


def one_line(res: subprocess.CompletedProcess) -> str:
    err = res.stderr.decode()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def md(tmp_path):
    proc = MaildeskProcess(write_config(tmp_path, port=free_port()))
    migrated_sqlite(tmp_path / "var" / "maildesk.db")  # as `maildesk db upgrade` leaves it (tests/support/database.py)
    return proc


@pytest.fixture
def fresh(tmp_path):
    """A config as shipped (generated secret under var/) on which `db upgrade` never ran."""
    cfg = write_config(tmp_path / "desk", port=free_port())
    cfg.write_text(cfg.read_text().replace('secret = "test-secret-not-for-production"', 'secret = { file = "var/secret", generate = true }'))
    return MaildeskProcess(cfg)


@pytest.mark.parametrize("args", NEEDS_DATABASE, ids=" ".join)
def test_unreachable_database_is_one_line(tmp_path, args):
    url = f"postgresql+psycopg://nobody:hunter2@127.0.0.1:{free_port()}/none"
    md = MaildeskProcess(write_config(tmp_path, port=free_port(), db_url=url))
    res = md.cli(*args, check=False)
    line = one_line(res)
    assert res.returncode == 69, line
    assert line.startswith("maildesk: cannot reach the database postgresql+psycopg://nobody:***@127.0.0.1:"), line
    assert "Connection refused" in line and f"[database] url in {md.config}" in line and "hunter2" not in line


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_before_db_upgrade_create_nothing(fresh, args):
    res = fresh.cli(*args, check=False)
    line = one_line(res)
    assert res.returncode == 78, line
    assert "maildesk db upgrade" in line and "no database" in line
    assert not (fresh.config.parent / "var").exists()  # no database file, no secret, no lock files


def test_a_database_without_tables_says_to_upgrade(tmp_path):
    md = MaildeskProcess(write_config(tmp_path, port=free_port()))
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "maildesk.db").write_bytes(b"")  # e.g. created by hand or by an older version
    res = md.cli("tickets", "list", check=False)
    assert res.returncode == 78 and "run `maildesk db upgrade`" in one_line(res)


def test_second_daemon_on_a_port_in_use_fails_before_starting_anything(md):
    md.start()
    try:
        res = md.cli("run", check=False)
        line = one_line(res)  # nothing else was logged: no worker, no agent sync, no job started
        assert res.returncode == 69, line
        assert f"cannot listen on 127.0.0.1:{md.port}: Address already in use" in line
        assert "already running" in line and str(md.config) in line
        assert send(md.port, make_mail(subject="still served")) == {}  # the first one is unharmed
    finally:
        assert md.stop() == 0


def test_rules_test_of_a_missing_file(md):
    res = md.cli("rules", "test", "/nonexistent.eml", check=False)
    line = one_line(res)
    assert res.returncode == 66 and "cannot read /nonexistent.eml: No such file or directory" in line


def test_output_closed_early_is_quiet(md):
    md.cli("ingest", input=make_mail().as_bytes())
    proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(md.config), "inbox", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=md.env())
    proc.stdout.close()  # like `| head` that has had enough, before maildesk writes anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""


@pytest.mark.parametrize(("args", "says"), [
    (("tickets", "list", "--status", "bogus"), "argument --status: invalid choice: 'bogus'"),
    (("inbox", "list", "--status", "done"), "argument --status: invalid choice: 'done'"),
    (("report", "--days", "-1"), "argument --days: expected a number above 0, got '-1'"),
    (("report", "--days", "soon"), "argument --days: expected a positive number, got 'soon'"),
    (("tickets", "list", "--limit", "0"), "argument --limit: expected a number above 0"),
    (("inbox", "retry"), "inbox retry needs an ID or --all"),
    (("events", "list", "--since", "2026-11-24T09:30:00"), "has no time zone"),
    (("jobs", "run", "nope"), "no job 'nope'"),
])
def test_bad_arguments_exit_64(md, args, says):
    res = md.cli(*args, check=False)
    line = one_line(res)
    assert res.returncode == 64 and says in line, line


def test_unknown_or_unretryable_ids_are_errors(md):
    md.cli("ingest", input=make_mail().as_bytes())
    md.cli("inbox", "process")
    for args, says in [(("inbox", "retry", "9999"), "no inbox message 9999"), (("outbox", "retry", "9999"), "no outgoing mail 9999"),
                       (("outbox", "show", "9999"), "no outgoing mail 9999"), (("tickets", "show", "MD-99"), "no ticket MD-99"),
                       (("events", "list", "--ticket", "MD-99"), "no ticket MD-99")]:
        res = md.cli(*args, check=False)
        assert res.returncode == 66 and says in one_line(res), (args, res.stderr)
    res = md.cli("inbox", "retry", "1", check=False)
    assert res.returncode == 65 and "inbox message 1 is processed, not failed" in one_line(res)
    res = md.cli("outbox", "retry", "1", check=False)
    assert res.returncode == 65 and "outgoing mail 1 is queued, not failed" in one_line(res)


def test_config_error_in_ingest_is_a_temporary_failure(tmp_path):
    # The MTA keeps the message and retries while the operator fixes the file, instead of bouncing it.
    md = MaildeskProcess(write_config(tmp_path, port=free_port()))
    md.config.write_text(md.config.read_text().replace("port = ", "port = \"x\"\n#"))
    res = md.cli("ingest", input=make_mail().as_bytes(), check=False)
    assert res.returncode == 75 and "config error" in one_line(res)


def test_a_bug_is_one_line_exit_70_and_the_traceback_on_request(capsys, monkeypatch):
    from maildesk.cli.errors import guarded

    def broken():
        raise KeyError("nobody expected this")

    monkeypatch.delenv("MAILDESK_TRACEBACK", raising=False)
    assert guarded(broken) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (a bug in maildesk): KeyError" in err and "MAILDESK_TRACEBACK=1" in err
    monkeypatch.setenv("MAILDESK_TRACEBACK", "1")
    with pytest.raises(KeyError):
        guarded(broken)


def test_the_status_choices_are_the_real_statuses():
    from maildesk.cli.main import _parser
    from maildesk.tickets import state
    from maildesk.vocab import STATUSES

    assert state.STATUSES is STATUSES
    with pytest.raises(SystemExit):
        _parser().parse_args(["tickets", "list", "--status", "archived"])
    for status in STATUSES:
        assert _parser().parse_args(["tickets", "list", "--status", status]).status == status
