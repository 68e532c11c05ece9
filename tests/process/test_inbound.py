"""The inbound decision order is data (maildesk.process.inbound.STAGES): the order is asserted
here, and real messages driven through the pipeline reach each stage that decides."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.outgoing.tokens import ReplyToken, make_address
from maildesk.process import correlate, inbound
from maildesk.process.autoreply import LOOP_HEADER
from maildesk.storage.models import Event
from tests.process.test_agentmail import AGENTS, as_agent
from tests.support import deliver, free_port, make_mail, write_config

ORDER = ["own mail", "duplicate", "bounce", "token", "thread", "survey", "agent claim", "agent mail", "new", "reply",
         "unverified", "referenced"]


@pytest.fixture
def adesk(tmp_path, clock):
    desk = build_desk(load_config(write_config(tmp_path, port=free_port(), files={"agents.toml": AGENTS})), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    yield desk
    desk.store.dispose()


@pytest.fixture
def decided(monkeypatch) -> list[str]:
    """The name of the stage that decided each message handled (the stages themselves run unchanged)."""
    seen: list[str] = []

    def watched(name, stage):
        def run(ctx):
            outcome = stage(ctx)
            if outcome is not None:
                seen.append(name)
            return outcome
        return run

    monkeypatch.setattr(inbound, "STAGES", tuple((name, watched(name, stage)) for name, stage in inbound.STAGES))
    return seen


def _events(desk, kind: str) -> list[dict]:
    with desk.store.read() as s:
        return [e.detail for e in s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id))]


def test_the_stages_run_in_the_documented_order():
    assert [name for name, _ in inbound.STAGES] == ORDER
    assert all(callable(stage) for _, stage in inbound.STAGES)


def test_each_deciding_stage_is_reached(adesk, decided):
    desk = adesk
    first = make_mail(subject="Printer on fire", message_id="<fire-1@customer.test>")
    res = deliver(desk, first)
    assert (decided[-1], res.status) == ("new", "processed") and res.text.startswith("new ticket MD-1")
    number = res.ticket_id

    res = deliver(desk, b"Received: from mx2.example.test; Mon, 23 Nov 2026 09:00:05 +0000\r\n" + first.as_bytes())
    assert (decided[-1], res.status, res.ticket_id) == ("duplicate", "duplicate", number)

    res = deliver(desk, make_mail(subject="Sent copy", sender="support@example.test", headers={LOOP_HEADER: desk.loop_id}))
    assert decided[-1] == "own mail" and "our own outgoing mail" in res.text

    res = deliver(desk, make_mail(subject="Undelivered Mail Returned to Sender", sender="MAILER-DAEMON@mx.example.test"),
                  mail_from="")
    assert decided[-1] == "bounce" and "null-sender mail" in res.text and res.ticket_id is None

    token = make_address(desk.secret, "support@example.test", ReplyToken("t", number))
    res = deliver(desk, make_mail(subject="Re: Printer on fire", body="Still burning.", to=token), rcpt=(token,))
    assert (decided[-1], res.ticket_id) == ("reply", number) and "threaded by token" in res.text

    res = deliver(desk, make_mail(subject=f"Re: [MD-{number}] Printer on fire", body="Hello?"))
    assert (decided[-1], res.ticket_id) == ("unverified", number) and "unverified mail kept" in res.text

    res = deliver(desk, make_mail(subject="Me too", sender="stranger@elsewhere.test", in_reply_to="<fire-1@customer.test>"))
    assert decided[-1] == "referenced" and res.ticket_id != number and f"names MD-{number} without proof" in res.text

    res = as_agent(desk, "alice", number, "#note\nLooking into it.")
    assert (decided[-1], res.ticket_id) == ("agent mail", number)

    survey = make_address(desk.secret, "support@example.test", ReplyToken("s", number, score=5))
    res = deliver(desk, make_mail(subject="Rating", body="Great help", to=survey), rcpt=(survey,))
    assert (decided[-1], res.ticket_id) == ("survey", number)
    assert [e["score"] for e in _events(desk, "rating")] == [5]


def test_an_unproven_agent_address_passes_the_claim_stage_as_a_customer(adesk, decided):
    res = deliver(adesk, make_mail(subject="Please wire money", sender="Bob Builder <bob@example.test>"))
    assert decided == ["new"] and res.text.startswith("new ticket")
    reasons = [e["reason"] for e in _events(adesk, "security")]
    assert any("claims to be from agent bob" in r for r in reasons), reasons


def test_the_reply_token_is_verified_once(adesk, decided, monkeypatch):
    number = deliver(adesk, make_mail()).ticket_id
    calls: list[str] = []
    real = correlate.verify_token

    def counted(secret, token):
        calls.append(token)
        return real(secret, token)

    monkeypatch.setattr(correlate, "verify_token", counted)
    token = make_address(adesk.secret, "support@example.test", ReplyToken("t", number))
    forged = make_address("another-secret", "support@example.test", ReplyToken("t", number))
    res = deliver(adesk, make_mail(subject="Re: x", to=f"{token}, {forged}"), rcpt=(forged, token))
    assert (decided[-1], res.ticket_id) == ("reply", number)
    assert sorted(calls) == sorted(t.split("+", 1)[1].split("@")[0] for t in (token, forged)), calls
    assert any("does not verify" in e["reason"] for e in _events(adesk, "security"))
