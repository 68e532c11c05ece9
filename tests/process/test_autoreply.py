"""Loop guards (design section 4), table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from maildesk.parse.message import parse
from maildesk.process.autoreply import LOOP_HEADER, may_autoreply, record_autoreply, suppress, suppression_reason
from maildesk.storage.writer import Writer
from tests.support.mail import make_mail

OWN = ("support@example.test", "billing@example.test")


def _msg(sender="jane@customer.test", headers=None, mail_from=None, source="smtp"):
    m = make_mail(sender=sender, headers=headers or {})
    return parse(m.as_bytes(), mail_from=sender if mail_from is None else mail_from, source=source)


@pytest.mark.parametrize("headers, expected", [
    ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
    ({"Auto-Submitted": "auto-generated; type=vacation"}, "Auto-Submitted: auto-generated"),
    ({"Precedence": "bulk"}, "Precedence: bulk"),
    ({"Precedence": "junk"}, "Precedence: junk"),
    ({"Precedence": "list"}, "Precedence: list"),
    ({"List-Id": "<news.example.com>"}, "mailing list"),
    ({"List-Unsubscribe": "<mailto:u@example.com>"}, "mailing list"),
    ({"X-Autoreply": "yes"}, "autoresponder"),
    ({"X-Autorespond": "vacation"}, "autoresponder"),
    ({"X-Auto-Response-Suppress": "All"}, "autoresponder"),
    ({LOOP_HEADER: "abc"}, "loop header"),
])
def test_auto_headers_suppress(headers, expected):
    assert expected in suppression_reason(_msg(headers=headers), OWN, "loop")


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.com", "postmaster@example.com", "no-reply@shop.example",
                                    "noreply@shop.example", "do-not-reply@bank.example", "support@example.test",
                                    "support+t1-abc@example.test"])
def test_system_and_own_senders_suppress(sender):
    assert suppression_reason(_msg(sender=sender), OWN, "loop") is not None


def test_null_return_path_suppresses_over_smtp():
    assert "null return path" in suppression_reason(_msg(mail_from=""), OWN, "loop")


def test_ordinary_mail_and_auto_submitted_no_are_answered():
    assert suppression_reason(_msg(), OWN, "loop") is None
    assert suppression_reason(_msg(headers={"Auto-Submitted": "no", "Precedence": "normal"}), OWN, "loop") is None


def test_rate_limit_and_suppression_list(desk):
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    with desk.store.transaction() as s:
        for i in range(3):
            assert may_autoreply(Writer(s), "Jane@Customer.test", now + timedelta(minutes=i), 3, 3600) is None
            record_autoreply(Writer(s), "jane@customer.test", now + timedelta(minutes=i))
        assert "rate limit" in may_autoreply(Writer(s), "jane@customer.test", now + timedelta(minutes=5), 3, 3600)
        assert may_autoreply(Writer(s), "jane@customer.test", now + timedelta(minutes=61), 3, 3600) is None
        suppress(s, "gone@customer.test", now + timedelta(days=30), "bounce 5.1.1")
        assert "suppressed until" in may_autoreply(Writer(s), "GONE@customer.test", now, 3, 3600)
        assert may_autoreply(Writer(s), "gone@customer.test", now + timedelta(days=31), 3, 3600) is None
