"""Security events are visible without opening each ticket: a WARNING log line each, and
``maildesk events list``. Through the real CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.config import write_config
from tests.support.database import migrated_sqlite
from tests.support.mail import make_mail
from tests.support.servers import MaildeskProcess, free_port


@pytest.fixture
def md(tmp_path):
    """MD-1 from jane; MD-2 from a stranger naming [MD-1] in the subject: a security event."""
    proc = MaildeskProcess(write_config(tmp_path, port=free_port()))
    migrated_sqlite(tmp_path / "var" / "maildesk.db")  # as `maildesk db upgrade` leaves it (tests/support/database.py)
    proc.cli("ingest", input=make_mail(subject="Printer on fire", sender="Jane <jane.doe@customer.test>").as_bytes())
    proc.cli("ingest", input=make_mail(subject="Re: [MD-1] Printer on fire", sender="Mallory <mallory@evil.test>").as_bytes())
    proc.processed = proc.cli("inbox", "process").stderr.decode()
    return proc


def test_a_security_event_is_a_warning_with_addresses_redacted(md):
    warnings = [line for line in md.processed.splitlines() if " WARNING " in line]
    assert len(warnings) == 1, md.processed
    assert "maildesk.security" in warnings[0] and "security event on ticket 2" in warnings[0]
    assert "subject names ticket(s) 1 but the sender is not a participant" in warnings[0]
    assert "sender=m***@evil.test" in warnings[0] and "mallory@" not in md.processed


def test_events_list_filters(md):
    everything = md.json("events", "list")
    assert {e["ticket"] for e in everything} == {"MD-1", "MD-2"}
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)  # newest first
    security = md.json("events", "list", "--kind", "security")
    assert len(security) == 1
    event = security[0]
    assert event["ticket"] == "MD-2" and event["actor"] == "system" and event["kind"] == "security"
    assert event["detail"]["sender"] == "mallory@evil.test" and "not a participant" in event["detail"]["reason"]
    assert {e["ticket"] for e in md.json("events", "list", "--ticket", "MD-1")} == {"MD-1"}
    assert len(md.json("events", "list", "--limit", "2")) == 2
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert md.json("events", "list", "--kind", "security", "--since", hour_ago) == security
    assert md.json("events", "list", "--since", in_an_hour) == []
    table = md.cli("events", "list", "--kind", "security").stdout.decode().splitlines()
    assert table[0].split() == ["AT", "TICKET", "ACTOR", "KIND", "DETAIL"]
    assert "MD-2" in table[1] and "security" in table[1] and "not a participant" in table[1]


def test_events_list_says_when_a_kind_was_never_recorded(md):
    res = md.cli("events", "list", "--kind", "securty", "--json")
    assert res.stdout.strip() == b"[]"
    assert b"no 'securty' event has been recorded yet; kinds recorded so far:" in res.stderr and b"security" in res.stderr
