"""Scheduled work with an injectable clock: SLA warnings/breaches/escalation, reminders,
auto-resolve and close, surveys; catch-up after downtime without duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.daemon.scheduler import run_job
from maildesk.outgoing.tokens import ReplyToken, make_address
from maildesk.storage.models import Rating, Ticket
from tests.support import Clock, MaildeskProcess, deliver, free_port, make_mail, outbox_mails, ticket_json, write_config

AGENTS = """
[[agents]]
login = "alice"
name = "Alice Lead"
address = "alice@example.test"
teams = ["support"]
[[agents]]
login = "bob"
name = "Bob Agent"
address = "bob@example.test"
teams = ["support"]
[[teams]]
name = "support"
members = ["alice", "bob"]
lead = "alice"
"""
RULES = """
[[rule]]
name = "everything-to-bob"
then = { team = "support", assign = "bob" }
"""
SLA = """
[select]
default = "clock"
[hours.always]
timezone = "Europe/Berlin"
always_open = true
[policy.clock]
hours = "always"
warn_at = 0.75
[policy.clock.first_response]
normal = "4h"
high = "2h"
urgent = "1h"
[policy.clock.resolution]
normal = "48h"
[[policy.clock.escalation]]
target = "first_response"
notify = "team_lead"
[[policy.clock.escalation]]
target = "first_response"
after = "1h"
raise_priority = true
[[policy.clock.escalation]]
target = "first_response"
after = "4h"
reassign_team = "support"
"""
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def jdesk(tmp_path):
    cfg = write_config(tmp_path, port=free_port(), files={"agents.toml": AGENTS, "rules.toml": RULES, "sla.toml": SLA})
    clock = Clock(T0)
    desk = build_desk(load_config(cfg), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    desk.clock_ = clock
    yield desk
    desk.store.dispose()


def events(desk, n, kind):
    return [e for e in ticket_json(desk, n)["events"] if e["kind"] == kind]


def mails_to(desk, address, kind=None):
    return [m for m in outbox_mails(desk, kind) if any(a.addr_spec == address for a in m["To"].addresses)]


def test_ack_states_the_promise(jdesk):
    deliver(jdesk, make_mail())
    body = outbox_mails(jdesk, "ack")[0].get_body(("plain",)).get_content()
    assert "within 4 hours, by Monday 14:00 CET" in body
    t = ticket_json(jdesk, 1)
    assert t["sla_policy"] == "clock" and t["assignee"] == "bob"


def test_warning_breach_and_each_escalation_step_once(jdesk):
    deliver(jdesk, make_mail())
    assert run_job(jdesk, "check_sla", T0 + timedelta(hours=2)).startswith("0 warning")
    run_job(jdesk, "check_sla", T0 + timedelta(hours=3, minutes=1))  # 75 % of 4 h
    assert len(events(jdesk, 1, "sla_warning")) == 1
    assert len(mails_to(jdesk, "bob@example.test", "notification")) == 2  # new ticket + warning
    run_job(jdesk, "check_sla", T0 + timedelta(hours=3, minutes=30))
    assert len(events(jdesk, 1, "sla_warning")) == 1  # not twice
    run_job(jdesk, "check_sla", T0 + timedelta(hours=4, minutes=5))
    breach = events(jdesk, 1, "sla_breach")
    assert len(breach) == 1 and breach[0]["detail"]["due"] == (T0 + timedelta(hours=4)).isoformat()
    steps = events(jdesk, 1, "escalation")
    assert [s["detail"]["action"] for s in steps] == ["notify"]
    assert steps[0]["detail"]["notified"] == ["alice"]
    assert any("SLA breached" in m["Subject"] for m in mails_to(jdesk, "alice@example.test"))
    run_job(jdesk, "check_sla", T0 + timedelta(hours=5, minutes=5))
    assert ticket_json(jdesk, 1)["priority"] == "high"
    run_job(jdesk, "check_sla", T0 + timedelta(hours=9))
    t = ticket_json(jdesk, 1)
    assert [s["detail"]["action"] for s in events(jdesk, 1, "escalation")] == ["notify", "raise_priority", "reassign_team"]
    assert t["assignee"] is None and t["team"] == "support"
    for hour in (10, 20, 30):  # nothing repeats
        run_job(jdesk, "check_sla", T0 + timedelta(hours=hour))
    assert len(events(jdesk, 1, "escalation")) == 3 and len(events(jdesk, 1, "sla_breach")) == 1


def test_catch_up_after_a_gap_sends_each_thing_once(jdesk):
    deliver(jdesk, make_mail())
    at = T0 + timedelta(days=3)  # the daemon was down over a weekend
    run_job(jdesk, "check_sla", at)
    run_job(jdesk, "check_sla", at + timedelta(minutes=1))
    targets = sorted(e["detail"]["target"] for e in events(jdesk, 1, "sla_warning"))
    assert targets == ["first_response", "resolution"]  # 4 h and 48 h both passed: one warning each
    assert sorted(e["detail"]["target"] for e in events(jdesk, 1, "sla_breach")) == targets
    assert len(events(jdesk, 1, "escalation")) == 3  # the chain is for first_response only


def test_answered_in_time_never_warns(jdesk):
    deliver(jdesk, make_mail())
    with jdesk.store.transaction() as s:
        t = s.get(Ticket, 1)
        t.first_response_at = T0 + timedelta(hours=1)
    run_job(jdesk, "check_sla", T0 + timedelta(hours=10))
    assert events(jdesk, 1, "sla_warning") == [] and events(jdesk, 1, "sla_breach") == []


def _pend(desk, at):
    from maildesk.tickets.state import set_status

    with desk.store.transaction() as s:
        set_status(s, s.get(Ticket, 1), "pending", "agent:bob", at)


def test_pending_reminder_then_auto_resolve_then_close(jdesk):
    deliver(jdesk, make_mail())
    _pend(jdesk, T0)
    run_job(jdesk, "remind_pending", T0 + timedelta(days=2))
    assert events(jdesk, 1, "reminder") == []
    run_job(jdesk, "remind_pending", T0 + timedelta(days=3, minutes=1))
    run_job(jdesk, "remind_pending", T0 + timedelta(days=3, hours=5))
    assert len(events(jdesk, 1, "reminder")) == 1
    assert len(mails_to(jdesk, "jane@customer.test", "reminder")) == 1
    run_job(jdesk, "remind_pending", T0 + timedelta(days=7, hours=1))
    t = ticket_json(jdesk, 1)
    assert t["status"] == "resolved"
    resolved = [m for m in mails_to(jdesk, "jane@customer.test", "status") if "Resolved" in m["Subject"]]
    assert len(resolved) == 1 and "mailto:support+s1-" in resolved[0].get_body(("plain",)).get_content()
    run_job(jdesk, "close_resolved", T0 + timedelta(days=10))
    assert ticket_json(jdesk, 1)["status"] == "resolved"
    run_job(jdesk, "close_resolved", T0 + timedelta(days=14, hours=2))
    assert ticket_json(jdesk, 1)["status"] == "closed"
    run_job(jdesk, "close_resolved", T0 + timedelta(days=20))
    assert len(events(jdesk, 1, "status_mail")) == 2  # resolved + closed, once each


def test_customer_answer_stops_the_reminder(jdesk):
    deliver(jdesk, make_mail())
    _pend(jdesk, T0)
    jdesk.clock_.now = T0 + timedelta(days=1)
    deliver(jdesk, make_mail(subject="Re: [MD-1] Printer on fire", body="here is the info"))
    run_job(jdesk, "remind_pending", T0 + timedelta(days=5))
    assert events(jdesk, 1, "reminder") == [] and ticket_json(jdesk, 1)["status"] == "open"


def _resolve(desk):
    from maildesk.outgoing.lifecycle import customer_status_mail
    from maildesk.tickets.state import set_status

    with desk.store.transaction() as s:
        t = s.get(Ticket, 1)
        set_status(s, t, "resolved", "agent:bob", desk.clock())
        customer_status_mail(s, desk, t, "resolved", desk.clock())


def test_survey_by_mailto_link(jdesk):
    deliver(jdesk, make_mail())
    _resolve(jdesk)
    body = next(iter(outbox_mails(jdesk, "status"))).get_body(("plain",)).get_content()
    link = next(line.split("mailto:")[1] for line in body.splitlines() if line.strip().startswith("4 - good"))
    address = link.split("?")[0]
    res = deliver(jdesk, make_mail(subject="Rating 4 for MD-1", body="", to=address), rcpt=(address,))
    assert "rating 4 recorded on MD-1" in res.text
    with jdesk.store.read() as s:
        assert s.scalars(select(Rating)).one().score == 4
    assert len(mails_to(jdesk, "jane@customer.test", "survey_thanks")) == 1
    deliver(jdesk, make_mail(subject="Rating 5", body="", to=address.replace("-4-", "-5-")), rcpt=(address.replace("-4-", "-5-"),))
    with jdesk.store.read() as s:
        assert s.scalars(select(Rating)).one().score == 4  # an altered score does not verify
    assert ticket_json(jdesk, 1)["status"] == "resolved"


def test_survey_by_digit_reply_and_bad_rating_notifies_lead(jdesk):
    deliver(jdesk, make_mail())
    _resolve(jdesk)
    status = outbox_mails(jdesk, "status")[0]
    deliver(jdesk, make_mail(subject="Re: " + status["Subject"], body="2 the answer took too long\n\n> quoted resolved mail",
                             in_reply_to=status["Message-ID"]))
    t = ticket_json(jdesk, 1)
    rating = next(e for e in t["events"] if e["kind"] == "rating")["detail"]
    assert rating["score"] == 2 and rating["comment"] == "the answer took too long"
    assert t["status"] == "resolved"  # a rating does not reopen the ticket
    assert any(m["X-Maildesk-Event"] == "bad_rating" for m in mails_to(jdesk, "alice@example.test", "notification"))


def test_survey_token_cannot_be_used_for_another_ticket(jdesk):
    deliver(jdesk, make_mail())
    deliver(jdesk, make_mail(subject="other", sender="eve@customer.test"))
    forged = make_address(jdesk.secret, "support@example.test", ReplyToken("s", 1, None, 5)).replace("s1-5-", "s2-5-")
    res = deliver(jdesk, make_mail(subject="Rating", body="", sender="eve@customer.test", to=forged), rcpt=(forged,))
    assert "rating" not in res.text
    with jdesk.store.read() as s:
        assert s.scalars(select(Rating)).all() == []
    assert any(e["kind"] == "security" for e in ticket_json(jdesk, res.ticket_id)["events"])


def test_jobs_run_at_from_the_command_line(tmp_path):
    cfg = write_config(tmp_path, port=free_port(), files={"agents.toml": AGENTS, "rules.toml": RULES, "sla.toml": SLA})
    md = MaildeskProcess(cfg)
    md.cli("db", "upgrade")
    md.cli("ingest", "--process", input=make_mail().as_bytes())
    created = datetime.fromisoformat(md.json("tickets", "show", "MD-1")["created_at"])
    out = md.cli("jobs", "run", "check_sla", "--at", (created + timedelta(hours=4, minutes=30)).isoformat(),
                 "--force").stdout.decode()  # ahead of now: --force (tests/cli/test_cli_jobs.py)
    assert out.strip() == "check_sla: 1 warning(s), 1 breach(es), 1 escalation step(s)"
    t = md.json("tickets", "show", "MD-1")
    kinds = [e["kind"] for e in t["events"]]
    assert kinds.count("sla_warning") == 1 and kinds.count("escalation") == 1 and kinds.count("sla_breach") == 1
    listing = md.cli("jobs", "list").stdout.decode()
    assert "check_sla" in listing and "remind_pending" in listing and "1 warning(s)" in listing
    assert md.cli("jobs", "run", "nope", check=False).returncode == 64  # EX_USAGE


def test_housekeeping_forgets_old_counts_and_expired_suppressions(jdesk):
    from maildesk.process.autoreply import may_autoreply, record_autoreply, suppress
    from maildesk.storage.models import AutoReply, Suppression

    with jdesk.store.transaction() as s:
        for i in range(3):
            record_autoreply(s, "a@b.test", T0 + timedelta(minutes=i))
        suppress(s, "gone@b.test", T0 + timedelta(days=1), "bounce")
    assert run_job(jdesk, "housekeeping", T0 + timedelta(minutes=30)).startswith("0 old")
    out = run_job(jdesk, "housekeeping", T0 + timedelta(days=2))
    assert out == "3 old rate-limit entries, 1 expired suppression(s) removed"
    with jdesk.store.read() as s:
        assert s.scalars(select(AutoReply)).all() == [] and s.scalars(select(Suppression)).all() == []
        assert may_autoreply(s, "a@b.test", T0 + timedelta(days=2), 3, 3600) is None


def test_report_counts_volume_times_breaches_and_ratings(jdesk):
    """The report over tickets made by the real pipeline (the metrics themselves: tests/reporting)."""
    from maildesk.reporting import build_report, load_dataset
    from maildesk.reporting.render import to_text

    deliver(jdesk, make_mail())
    deliver(jdesk, make_mail(subject="second", body="again"))  # same requester: a repeat contact
    with jdesk.store.transaction() as s:
        t = s.get(Ticket, 1)
        t.first_response_at = T0 + timedelta(hours=2)
        t.status, t.resolved_at = "resolved", T0 + timedelta(hours=6)
        s.add(Rating(ticket_id=1, score=5, comment="", at=T0 + timedelta(hours=7)))
    since, until = T0 - timedelta(days=1), T0 + timedelta(days=1)
    with jdesk.store.read() as s:
        r = build_report(load_dataset(s, until), jdesk.sla, since, until)
    assert r["volume"]["created"] == 2 and r["volume"]["by_channel"] == {"smtp": 2} and r["backlog"]["open"] == 1
    assert r["times"]["first_response"]["calendar"] == {"count": 1, "median_hours": 2.0, "p90_hours": 2.0}
    assert r["times"]["resolution"]["calendar"]["median_hours"] == 6.0
    assert r["sla"]["by_target"]["first_response"]["breached"] == 1  # ticket 2 was never answered
    assert r["satisfaction"]["average"] == 5 and r["agents"]["bob"]["open_load"] == 1
    assert r["reopens"]["repeat_requesters"] == {"jane@customer.test": 1}
    assert "first response    median 2.0 h" in to_text(r)


def test_tickets_show_has_deadlines_and_rating(jdesk):
    deliver(jdesk, make_mail())
    t = ticket_json(jdesk, 1)
    assert t["sla"]["first_response_due"] == (T0 + timedelta(hours=4)).isoformat()
    assert t["sla"]["resolution_due"] == (T0 + timedelta(hours=48)).isoformat() and t["rating"] is None
    _resolve(jdesk)
    status = outbox_mails(jdesk, "status")[0]
    deliver(jdesk, make_mail(subject="Re: resolved", body="5 great", in_reply_to=status["Message-ID"]))
    assert ticket_json(jdesk, 1)["rating"]["score"] == 5


def test_directory_sync_follows_agents_toml(jdesk):
    from maildesk.policy.agents import parse_directory
    from maildesk.policy.sync import sync_agents
    from maildesk.storage.models import Agent

    changed, _ = parse_directory(AGENTS.replace('name = "Bob Agent"', 'name = "Robert Agent"').split("[[agents]]\nlogin = \"bob\"")[0]
                                 + '[[agents]]\nlogin = "bob"\nname = "Robert Agent"\naddress = "robert@example.test"\n')
    with jdesk.store.transaction() as s:
        assert sync_agents(s, changed) == {"added": 0, "updated": 1, "deactivated": 0}
        bob = s.scalars(select(Agent).where(Agent.login == "bob")).one()
        assert (bob.name, bob.address, bob.active) == ("Robert Agent", "robert@example.test", True)
    only_alice, _ = parse_directory('[[agents]]\nlogin = "alice"\nname = "Alice Lead"\naddress = "alice@example.test"\n')
    with jdesk.store.transaction() as s:
        assert sync_agents(s, only_alice)["deactivated"] == 1
        assert not s.scalars(select(Agent).where(Agent.login == "bob")).one().active


def test_check_sla_writes_only_for_tickets_with_something_due(jdesk, monkeypatch):
    """A storm of fresh tickets costs the SLA job one read, not a write transaction each."""
    deliver(jdesk, make_mail(subject="old one", sender="old@customer.test"))
    jdesk.clock_.advance(hours=3, minutes=5)  # the first ticket is past 75 % of its 4 h
    for i in range(30):
        deliver(jdesk, make_mail(subject=f"fresh {i}", sender=f"f{i}@customer.test"))
    writes = []
    real = jdesk.store.transaction

    def counting(*args, **kwargs):
        writes.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(jdesk.store, "transaction", counting)
    from maildesk.daemon.jobs import check_sla

    assert check_sla(jdesk, jdesk.clock()).startswith("1 warning")
    assert len(writes) == 1  # the due ticket's own transaction
    writes.clear()
    assert check_sla(jdesk, jdesk.clock()).startswith("0 warning")  # warned already: nothing due, nothing written
    assert writes == []
