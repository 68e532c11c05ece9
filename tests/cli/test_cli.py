"""The command line for people and scripts: ingest exit codes, inbox/tickets JSON, retry."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.config import ROOT, write_config
from tests.support.database import migrated_sqlite
from tests.support.mail import make_mail
from tests.support.servers import MaildeskProcess, free_port


@pytest.fixture
def md(tmp_path):
    proc = MaildeskProcess(write_config(tmp_path, port=free_port()))
    migrated_sqlite(tmp_path / "var" / "maildesk.db")  # as `maildesk db upgrade` leaves it (tests/support/database.py)
    return proc


def test_ingest_from_stdin_then_process(md):
    raw = make_mail(subject="via pipe").as_bytes()
    res = md.cli("ingest", "--sender", "jane@customer.test", input=raw)
    assert res.returncode == 0 and b"stored inbox 1" in res.stdout
    rows = md.json("inbox", "list")
    assert rows[0]["status"] == "pending" and rows[0]["source"] == "pipe"
    for key in ("id", "status", "error", "message_id", "received_at", "ticket"):
        assert key in rows[0]
    md.cli("inbox", "process")
    rows = md.json("inbox", "list")
    assert rows[0]["status"] == "processed" and rows[0]["ticket"] == "MD-1"
    show = md.json("tickets", "show", "MD-1")
    assert show["subject"] == "via pipe"
    m = show["messages"][0]
    for key in ("direction", "kind", "from", "to", "subject", "message_id", "text", "attachments"):
        assert key in m
    assert isinstance(show["events"], list) and show["events"][0]["kind"] == "created"
    human = md.cli("tickets", "show", "1").stdout.decode()
    assert "MD-1" in human and "via pipe" in human


def test_ingest_file_and_process_flag(md, tmp_path):
    f = tmp_path / "m.eml"
    f.write_bytes(make_mail(subject="from file").as_bytes())
    out = md.cli("ingest", str(f), "--process").stdout.decode()
    assert "processed: new ticket MD-1" in out


def test_ingest_exits_75_when_it_cannot_store(tmp_path):
    cfg = write_config(tmp_path, port=free_port(), db_url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    res = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(cfg), "ingest"], input=make_mail().as_bytes(),
                         capture_output=True, cwd=ROOT, timeout=60)
    assert res.returncode == 75, res.stderr
    assert b"retry" in res.stderr or b"cannot reach" in res.stderr


def test_ingest_refuses_empty_input(md):
    res = md.cli("ingest", input=b"", check=False)
    assert res.returncode == 65 and b"empty message" in res.stderr


def test_failed_processing_is_kept_and_retried(md, tmp_path):
    # A poisoned template makes acknowledging fail: the message is kept as failed, not lost.
    templates = tmp_path / "config" / "templates"
    templates.mkdir(parents=True)
    (templates / "ack.txt.j2").write_text("{% block subject %}{{ no_such_variable }}{% endblock %}{% block body %}x{% endblock %}")
    md.cli("ingest", input=make_mail(subject="poison").as_bytes())
    res = md.cli("inbox", "process", check=False)
    assert res.returncode == 1
    failed = md.json("inbox", "list", "--failed")
    assert len(failed) == 1 and "no_such_variable" in failed[0]["error"]
    assert md.json("tickets", "list") == []  # the whole message rolled back
    (templates / "ack.txt.j2").unlink()
    assert b"1 message(s) queued" in md.cli("inbox", "retry", str(failed[0]["id"])).stdout
    md.cli("inbox", "process")
    assert md.json("inbox", "list")[0]["status"] == "processed"
    assert md.json("tickets", "list")[0]["subject"] == "poison"


def test_config_error_is_one_clear_line(tmp_path):
    cfg = write_config(tmp_path, port=free_port())
    cfg.write_text(cfg.read_text().replace("port = ", "port = \"x\"\n#"))
    res = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(cfg), "tickets", "list"],
                         capture_output=True, cwd=ROOT, text=True)
    assert res.returncode == 78  # EX_CONFIG
    assert f"{cfg}:" in res.stderr and "[smtp] port: expected an integer" in res.stderr


def test_run_refuses_an_unmigrated_database(tmp_path):
    cfg = write_config(tmp_path, port=free_port())
    res = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(cfg), "run"], capture_output=True,
                         cwd=ROOT, text=True, timeout=60)
    assert res.returncode == 78 and "maildesk db upgrade" in res.stderr


def test_tickets_list_filters_and_json_shape(md):
    for i in range(3):
        md.cli("ingest", input=make_mail(subject=f"t{i}", sender=f"u{i}@customer.test").as_bytes())
    md.cli("inbox", "process")
    listing = md.json("tickets", "list", "--status", "new")
    assert [t["subject"] for t in listing] == ["t2", "t1", "t0"]
    assert json.loads(md.cli("tickets", "list", "--status", "closed", "--json").stdout) == []
    table = md.cli("tickets", "list").stdout.decode().splitlines()
    assert table[0].split()[:3] == ["REF", "STATUS", "PRIORITY"] and len(table) == 4


def test_outbox_show_prints_a_sent_mail_decoded(md):
    md.cli("ingest", input=make_mail(subject="Принтер не печатает", sender="Jane <jane@customer.test>").as_bytes())
    md.cli("inbox", "process")
    ack = next(m for m in md.json("outbox", "list") if m["kind"] == "ack")
    out = md.cli("outbox", "show", str(ack["id"])).stdout.decode()
    head, _, body = out.partition("\n\n")
    assert f"outbox {ack['id']}" in head and "ack" in head and "MD-1" in head and "-> jane@customer.test" in head
    headers = dict(line.split(": ", 1) for line in body.split("\n\n", 1)[0].splitlines())
    assert headers["Subject"] == "[MD-1] Re: Принтер не печатает"  # decoded, not =?utf-8?b?...?=
    assert headers["To"] == "Jane <jane@customer.test>" and headers["Reply-To"].startswith("Example Support <support+t1-")
    assert "ticket MD-1" in body.split("\n\n", 1)[1]  # the text, decoded from its transfer encoding
    shown = md.json("outbox", "show", str(ack["id"]))
    assert shown["id"] == ack["id"] and ["Subject", "[MD-1] Re: Принтер не печатает"] in shown["headers"]
    assert "ticket MD-1" in shown["text"] and shown["attachments"] == []
    raw = md.cli("outbox", "show", str(ack["id"]), "--raw").stdout
    assert raw.startswith(b"From: ") or b"\nFrom: " in raw
    assert b"=?utf-8?" in raw.lower()  # exactly as sent
