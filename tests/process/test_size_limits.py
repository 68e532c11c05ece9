"""Memory bounded by bytes and outgoing size bounded (issue 14, items 2 and 3).

Parsing keeps at most ``[mail] max_text_kept`` of a mail's text; a processing step loads at
most ``[processing] batch_bytes`` of raw mail; notifications show at most ``[workflow]
notification_text_max`` of a message and a long text is not sent twice (no HTML copy);
sent mail loses its bytes after ``[outbound] keep_sent_days`` (the ``purge_sent`` job,
``maildesk db vacuum``) and keeps its row, so replies still thread.
"""

from __future__ import annotations

import base64
import quopri
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from tests.support.agents import AGENTS
from tests.support.config import write_config
from tests.support.desk import deliver, ticket_json
from tests.support.mail import make_mail, send
from tests.support.servers import MaildeskProcess, free_port


def _big_text(size: int) -> str:
    line = "Zeile mit Umlauten: äöü ß, and a long English sentence after it, number {:07d}.\n"
    return "".join(line.format(i) for i in range(size // len(line.format(0).encode()) + 1))


def _multipart(text: str, attachment: bytes, forwarded: bytes) -> bytes:
    qp = quopri.encodestring(text.encode("utf-8").replace(b"\n", b"\r\n"))
    b64 = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    return (b"From: Big <big@customer.test>\r\nTo: support@example.test\r\nSubject: huge\r\n"
            b"Message-ID: <huge.1@customer.test>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n"
            b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            + qp + b"\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n" + b64
            + b"\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\n" + forwarded + b"\r\n--b1--\r\n")


def test_parse_keeps_at_most_max_text_and_the_rest_whole():
    from maildesk.parse.message import parse

    text = _big_text(3_000_000)
    inner_body = _big_text(400_000)
    forwarded = (b"From: Old <old@customer.test>\r\nSubject: the earlier one\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                 + inner_body.encode().replace(b"\n", b"\r\n"))
    attachment = bytes(range(256)) * 1200
    msg = parse(_multipart(text, attachment, forwarded), max_text=65_536)

    body, note = msg.text.split("\n\n[maildesk: ", 1)
    assert text.startswith(body) and len(body) > 60_000  # decoded (no =C3=A4), cut on a character
    assert "cut here" in note and "max_text_kept" in note
    assert any("max_text_kept" in d for d in msg.defects)
    files = {a.filename: a for a in msg.attachments}
    assert files["data.bin"].data == attachment  # attachments stay whole
    eml = next(a for a in msg.attachments if a.filename.endswith(".eml"))
    assert eml.data.replace(b"\r\n", b"\n").endswith(inner_body.encode())  # a forwarded mail too
    inner = parse(eml.data, max_text=1_000_000)
    assert inner.subject == "the earlier one" and inner.text == inner_body.strip("\n")


def test_parse_of_a_huge_html_only_mail_is_cut():
    from maildesk.parse.message import parse

    html = "".join(f"<p>Absatz {i}: <b>fett</b> &amp; normal.</p>\r\n" for i in range(80_000)).encode()
    raw = (b"From: a@customer.test\r\nTo: support@example.test\r\nSubject: html\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html)
    msg = parse(raw, max_text=100_000)
    assert len(msg.html) <= 100_000 and msg.text_from_html
    assert msg.text.startswith("Absatz 0: fett & normal.") and "max_text_kept" in msg.text
    assert len(msg.text) < 110_000


def _store(desk, sizes: list[int]) -> list[int]:
    from maildesk.ingest.intake import Intake, RawMail

    ids = []
    for i, size in enumerate(sizes):
        raw = make_mail(subject=f"large {i}", body=("x" * 70 + "\n") * (size // 71)).as_bytes()
        ids.append(Intake(desk.store, desk.clock).store_one(RawMail(raw, "jane@customer.test", ("support@example.test",), "smtp")))
    return ids


def test_a_processing_step_loads_at_most_batch_bytes(tmp_path, clock):
    from maildesk.config.load import load_config
    from maildesk.daemon.build import build_desk, sync_directory
    from maildesk.process.pipeline import process_pending

    desk = build_desk(load_config(write_config(tmp_path, port=free_port(), processing={"batch_bytes": 700_000})), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    try:
        ids = _store(desk, [300_000, 300_000, 300_000, 900_000, 100_000])
        steps = []
        while results := process_pending(desk, 200):
            steps.append([r.inbox_id for r in results])
            assert all(r.status == "processed" for r in results)
        assert steps == [ids[:2], ids[2:3], ids[3:4], ids[4:]]  # the 900 KB mail alone, over the budget
    finally:
        desk.store.dispose()


def test_daemon_with_small_batch_bytes_processes_large_mail(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", smtp={"max_message_size": 4_000_000},
                       processing={"batch_bytes": 1_000_000})
    for i in range(4):
        send(d.port, make_mail(subject=f"log file {i}", body=_big_text(1_500_000), sender=f"Jane {i} <jane{i}@customer.test>"))
    acks = sink.wait_for(lambda m: m["Auto-Submitted"] == "auto-replied", count=4, timeout=60)
    assert len({m["X-Maildesk-Ticket"] for m in acks}) == 4
    rows = d.json("inbox", "list")
    assert [r["status"] for r in rows] == ["processed"] * 4
    shown = d.json("tickets", "show", "MD-1")["messages"][0]["text"]
    assert len(shown) < 1_100_000 and "max_text_kept" in shown  # the text kept is cut at 1 MiB


def test_a_3mb_text_mail_gives_notifications_under_the_cut(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": AGENTS},
                       smtp={"max_message_size": 4_000_000})
    send(d.port, make_mail(subject="my whole log", body=_big_text(3_000_000)))
    notes = sink.wait_for(lambda m: m["X-Maildesk-Event"] == "new_ticket", count=2, timeout=60)
    cut = 102_400  # [workflow] notification_text_max, default
    raws = [e.original_content for e in sink.messages if b"X-Maildesk-Event: new_ticket" in e.original_content]
    assert len(raws) == 2 and all(len(r) < 2 * cut for r in raws), [len(r) for r in raws]  # 3 MB twice before
    for m in notes:
        assert m.get_body(("html",)) is None  # the long text is not carried twice
        text = m.get_body(("plain",)).get_content()
        assert len(text) < cut + 4096
        assert "`maildesk tickets show MD-1`" in text and "notification_text_max" in text
        assert "number 0000000." in text and "number 0020000." not in text


def test_a_long_agent_relay_is_text_only(desk):
    from maildesk.outgoing.mailer import prepare
    from maildesk.storage.models import Ticket

    result = deliver(desk, make_mail())
    with desk.store.read() as s:
        ticket = s.get(Ticket, result.ticket_id)
        short = prepare(desk.mail, ticket, "agent_reply", {"text": "Thanks!", "agent_name": "Alice"})
        long = prepare(desk.mail, ticket, "agent_reply", {"text": "line of an answer\n" * 10_000, "agent_name": "Alice"})
    assert b"text/html" in short.body.content
    assert b"text/html" not in long.body.content and b"text/html" not in long.body.headers.encode()


# -- outgoing bytes after delivery --------------------------------------------------------
def _sent(desk):
    from maildesk.daemon.build import make_deliverer_for
    from maildesk.outgoing.outbox import drain

    res = drain(desk.store, make_deliverer_for(desk.config), desk.config.outbound, desk.clock)
    assert res.sent >= 1


def test_purge_job_removes_old_sent_bodies_and_threading_still_works(desk, clock, config_path):
    from maildesk.daemon.scheduler import run_job
    from maildesk.storage.models import Outbox, OutboxBody
    from tests.support.desk import outbox_mails

    first = deliver(desk, make_mail(subject="Printer on fire"))
    ack = outbox_mails(desk, "ack")[0]
    _sent(desk)
    clock.advance(days=2)
    assert run_job(desk, "purge_sent").startswith("0 ")  # younger than keep_sent_days (3)
    clock.advance(days=1, hours=1)
    assert run_job(desk, "purge_sent").startswith("1 sent mail body removed")
    with desk.store.read() as s:
        row = s.scalars(select(Outbox).where(Outbox.message_id == ack["Message-ID"])).one()
        assert row.status == "sent" and row.raw is None and row.rcpt_to == ["jane@customer.test"]
        assert s.scalar(select(func.count()).select_from(OutboxBody)) == 0
    reply = deliver(desk, make_mail(subject="no ref here", body="It still burns.", in_reply_to=ack["Message-ID"]))
    assert reply.ticket_id == first.ticket_id
    assert ticket_json(desk, first.ticket_id)["messages"][-1]["thread_via"] == "header"
    proc = MaildeskProcess(config_path)
    assert "purge_sent" in proc.cli("jobs", "list").stdout.decode()
    shown = proc.cli("outbox", "show", str(row.id)).stdout.decode()
    assert "keep_sent_days" in shown and ack["Message-ID"] in shown
    raw = proc.cli("outbox", "show", str(row.id), "--raw", check=False)
    assert raw.returncode == 65 and b"keep_sent_days" in raw.stderr


def test_db_vacuum_purges_due_bodies_and_reports_bytes(tmp_path, db_url):
    from maildesk.config.load import load_config
    from maildesk.storage.models import Outbox, OutboxBody
    from maildesk.storage.store import store_for

    config = write_config(tmp_path / "d", port=free_port(), db_url=db_url, smtp={"max_message_size": 4_000_000})
    proc = MaildeskProcess(config)
    proc.cli("db", "upgrade")
    for i in range(3):
        msg = make_mail(subject=f"attached {i}", body="see the file")
        msg.add_attachment(bytes(range(256)) * 4000, maintype="application", subtype="octet-stream", filename="f.bin")
        proc.cli("ingest", "--process", "-f", "jane@customer.test", input=msg.as_bytes())
    proc.cli("outbox", "flush")
    store = store_for(load_config(config))
    try:
        with store.transaction() as s:
            s.execute(update(Outbox).values(sent_at=datetime(2026, 1, 1, tzinfo=UTC)))  # long before keep_sent_days
            assert s.scalar(select(func.count()).select_from(OutboxBody)) == 3
        out = proc.cli("db", "vacuum").stdout.decode()
        assert out.startswith("removed 3 sent mail bodies (")
        found = re.search(r"database: ([\d,]+) bytes before, ([\d,]+) bytes after", out)
        before, after = (int(g.replace(",", "")) for g in found.groups())
        assert before > 0 and after > 0
        if db_url.startswith("sqlite"):
            assert after < before
        with store.read() as s:
            assert s.scalar(select(func.count()).select_from(OutboxBody)) == 0
            assert s.scalar(select(func.count()).select_from(Outbox)) == 3
        assert proc.cli("db", "vacuum", "--full").stdout.decode().startswith("removed 0 sent mail bodies")
    finally:
        store.dispose()


@pytest.mark.parametrize("section,key,value", [("processing", "batch_bytes", 0), ("mail", "max_text_kept", 10),
                                               ("workflow", "notification_text_max", 0), ("outbound", "keep_sent_days", -1)])
def test_size_limits_are_checked(tmp_path, section, key, value):
    from maildesk.config.load import load_config
    from maildesk.errors import ConfigError

    path = write_config(tmp_path, port=free_port())
    text = path.read_text()
    text = text.replace(f"[{section}]\n", f"[{section}]\n{key} = {value}\n") if f"[{section}]\n" in text \
        else text + f"\n[{section}]\n{key} = {value}\n"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"\[{section}\] {key}: expected (at least|days)"):
        load_config(path)


def test_a_processing_step_reads_one_raw_mail_at_a_time(tmp_path, clock):
    """Every statement that reads the raw bytes (``inbox_raw.raw``, or on SQLite their length
    before the blob is read in one piece) reads one row's, by its id: never another
    message's with it, never through the ORM (identity map)."""
    from sqlalchemy import event

    from maildesk.config.load import load_config
    from maildesk.daemon.build import build_desk, sync_directory
    from maildesk.process.pipeline import process_pending

    desk = build_desk(load_config(write_config(tmp_path, port=free_port())), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    reads: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if re.search(r"\binbox(_raw)?\.raw\b", statement) and statement.lstrip().upper().startswith("SELECT"):
            reads.append((statement, parameters))

    try:
        ids = _store(desk, [50_000, 50_000, 50_000])
        event.listen(desk.store.engine, "before_cursor_execute", seen)
        results = process_pending(desk, 200)
        assert [r.inbox_id for r in results] == ids and all(r.status == "processed" for r in results)
        assert len(reads) == 3  # one read per message
        for (statement, parameters), inbox_id in zip(reads, ids, strict=True):
            assert " IN " not in statement.upper()
            assert list(parameters) == [inbox_id]
    finally:
        event.remove(desk.store.engine, "before_cursor_execute", seen)
        desk.store.dispose()
