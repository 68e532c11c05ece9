"""Finding tickets: full-text search through the real pipeline (koi8-r, HTML-only, internal
notes) on SQLite and PostgreSQL, and every filter of `maildesk tickets list`."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.storage.models import Event, TicketMessage
from maildesk.storage.store import open_store
from maildesk.tickets.search import TicketQuery, fts5_query, search_tickets
from tests.reporting.dataset import store_dataset
from tests.support.clock import Clock
from tests.support.config import write_config
from tests.support.desk import deliver
from tests.support.mail import encoded_word, make_mail, message, text
from tests.support.servers import MaildeskProcess, free_port


@pytest.fixture
def sdesk(db_url, tmp_path):
    desk = build_desk(load_config(write_config(tmp_path, port=free_port(), db_url=db_url)), clock=Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)))
    desk.store.upgrade()
    sync_directory(desk)
    yield desk
    desk.store.dispose()


def found(desk, words, **kw) -> list[int]:
    with desk.store.read() as s:
        return sorted(t.id for t in s.scalars(search_tickets(s, TicketQuery(text=words, **kw))).unique())


def test_search_finds_koi8r_words_html_only_mail_and_keeps_notes_private(sdesk):
    koi8 = message(text("Здравствуйте! Не работает принтер в бухгалтерии.\n", charset="koi8-r"), subject=encoded_word("Проблема", "koi8-r"),
                   sender=f"{encoded_word('Иван Петров', 'koi8-r')} <ivan@acme.example>", to="support@example.test", message_id="<k1@acme.example>")
    assert "принтер".encode("koi8-r") in koi8 and "принтер".encode() not in koi8  # the body is KOI8-R bytes
    deliver(sdesk, koi8)
    html = message(text("<html><body><p>Our <b>kerberos</b> tickets expire at&nbsp;noon</p></body></html>", subtype="html"),
                   subject="Login trouble", sender="Bea <bea@globex.example>", to="support@example.test", message_id="<h1@globex.example>")
    deliver(sdesk, html)
    deliver(sdesk, make_mail(subject="Third", body="nothing special here", sender="Carl <carl@initech.example>"))
    with sdesk.store.transaction() as s:  # an internal note on ticket 3, stored like the pipeline stores notes
        s.add(TicketMessage(ticket_id=3, direction="int", kind="note", from_addr="alice@example.test", subject="",
                            text="customer owes us for the zebrafish licence", created_at=datetime(2026, 11, 23, 10, tzinfo=UTC)))

    assert found(sdesk, "принтер") == [1]
    assert found(sdesk, "ПРИНТЕР бухгалтерии") == [1]  # case-folded, every word required
    assert found(sdesk, "принтер kerberos") == []
    assert found(sdesk, "kerberos") == [2]  # the text made from the HTML part
    assert found(sdesk, "Петров") == [1]  # the requester's name
    assert found(sdesk, "zebrafish") == [3]
    assert found(sdesk, "zebrafish", public_only=True) == []
    assert found(sdesk, "special", public_only=True) == [3]
    assert found(sdesk, "\"*) OR (") == []  # query syntax in the input is just text


def test_fts5_query_quotes_every_word():
    assert fts5_query('VPN "acme" NEAR(x') == '"VPN" "acme" "NEAR" "x"'
    assert fts5_query("  -*- ") is None


@pytest.fixture
def listed(tmp_path):
    proc = MaildeskProcess(write_config(tmp_path, port=free_port()))
    proc.cli("db", "upgrade")
    store = open_store(f"sqlite:///{tmp_path}/var/maildesk.db")
    with store.sessions.begin() as s:
        store_dataset(s)
        s.add(Event(ticket_id=3, at=datetime(2026, 11, 6, 20, tzinfo=UTC), actor="system", kind="sla_breach", detail={"target": "first_response"}))
        s.add(Event(ticket_id=1, at=datetime(2026, 11, 2, 18, tzinfo=UTC), actor="system", kind="sla_breach", detail={"target": "resolution"}))
    store.dispose()

    def refs(*args) -> list[int]:
        return sorted(r["number"] for r in json.loads(proc.cli("tickets", "list", *args, "--json").stdout))

    refs.proc = proc
    return refs


def test_tickets_list_filters(listed):
    assert listed("--requester", "acme.example") == [1, 2, 3]
    assert listed("--requester", "@acme.example") == [1, 2, 3]
    assert listed("--requester", "A@acme.example") == [1, 3]
    assert listed("--assignee", "bob") == [2, 4]
    assert listed("--team", "billing") == [1, 2]
    assert listed("--priority", "high") == [2]
    assert listed("--status", "open") == [3, 6, 7]
    assert listed("--created-since", "2026-11-06", "--created-until", "2026-11-10") == [3, 4]  # the until date counts whole
    assert listed("--breached") == [3]  # ticket 1 breached too, but is resolved
    assert listed("--team", "support", "--assignee", "alice", "--priority", "low") == [7]
    assert listed("--search", "ticket", "--requester", "c@other.example") == [4]


def test_tickets_list_csv(listed):
    out = listed.proc.cli("tickets", "list", "--team", "billing", "--format", "csv").stdout.decode()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["ref"] for r in rows] == ["MD-2", "MD-1"] and rows[0]["requester"] == "b@acme.example" and rows[1]["assignee"] == "alice"
