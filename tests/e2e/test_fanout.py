"""Fan-out is bounded (issue 14, item 4), through the real daemon and an aiosmtpd sink:
agent notifications per sender and per ticket ([workflow] notify_limit, then one digest per
agent per notify_window), security events per mail ([mail] max_security_events) and To/Cc
addresses per mail ([mail] max_addresses_per_mail)."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta

from tests.e2e.test_agents import to
from tests.support.agents import AGENTS
from tests.support.mail import make_mail, send
from tests.support.servers import wait_until

LIMITED = "[workflow]\nnotify_limit = 3\nnotify_window = 3600\n"


def _db(d) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{d.config.parent / 'var' / 'maildesk.db'}?mode=ro", uri=True, timeout=10)


def quiet(d, sink, inbox: int) -> None:
    """Wait until ``inbox`` messages are processed and everything they caused is at the sink."""
    def done():
        with _db(d) as db:
            processed = db.execute("select count(*) from inbox where status != 'pending'").fetchone()[0]
            notices = db.execute("select count(*) from notices where done_at is null").fetchone()[0]
            queued = db.execute("select count(*) from outbox where status in ('queued', 'sending')").fetchone()[0]
            sent = db.execute("select count(*) from outbox where status = 'sent'").fetchone()[0]
        return processed >= inbox and not notices and not queued and len(sink.messages) >= sent
    wait_until(done, timeout=60, interval=0.2, what=f"{inbox} messages processed and their mail delivered")


def notifications(sink, login: str, event: str | None = None) -> list:
    return [m for m in sink.parsed() if to(f"{login}@example.test")(m) and m["X-Maildesk-Event"] != "digest"
            and (event is None or m["X-Maildesk-Event"] == event)]


def digests(sink, login: str) -> list:
    return [m for m in sink.parsed() if to(f"{login}@example.test")(m) and m["X-Maildesk-Event"] == "digest"]


def test_one_sender_gets_notify_limit_notifications_then_one_digest_per_agent(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": AGENTS}, extra=LIMITED)
    for i in range(10):
        send(d.port, make_mail(subject=f"flood {i}", sender="Fred Flood <fred@flood.test>"))
    send(d.port, make_mail(subject="someone else", sender="Olga <olga@customer.test>"))
    quiet(d, sink, 11)
    assert len(d.json("tickets", "list")) == 11  # every mail is a ticket; only the notifications are bounded
    for login in ("alice", "bob"):
        got = sorted(m["Subject"] for m in notifications(sink, login, "new_ticket"))
        assert got == sorted([f"[MD-{n}] New ticket: flood {n - 1}" for n in (1, 2, 3)] + ["[MD-11] New ticket: someone else"])
    held = d.json("events", "list", "--kind", "notifications_held")
    assert sorted(int(e["ticket"][3:]) for e in held) == list(range(4, 11))
    assert all(e["detail"]["why"] == "sender" for e in held)

    d.cli("jobs", "run", "notify_digest")  # the daemon runs it every minute (and just after start) too: either sends it
    quiet(d, sink, 11)
    for login in ("alice", "bob"):
        (digest,) = digests(sink, login)
        text = digest.get_body(("plain",)).get_content()
        assert digest["Subject"] == "7 notification(s) held: mail from 1 sender(s) on 7 ticket(s)"
        assert "fred@flood.test: 7" in text
        assert re.findall(r"\[(MD-\d+)\]", text) == [f"MD-{n}" for n in range(4, 11)]
        assert digest["Auto-Submitted"] == "auto-generated" and digest["Reply-To"] is None

    # The flood goes on: no second digest within the window, one after it.
    for i in range(2):
        send(d.port, make_mail(subject=f"more flood {i}", sender="fred@flood.test"))
    quiet(d, sink, 13)
    assert "0 digest(s)" in d.cli("jobs", "run", "notify_digest").stdout.decode()
    for login in ("alice", "bob"):
        assert len(notifications(sink, login)) == 4 and len(digests(sink, login)) == 1
    later = (datetime.now(UTC) + timedelta(minutes=61)).isoformat()
    assert "2 digest(s) listing 4" in d.cli("jobs", "run", "notify_digest", "--at", later, "--force").stdout.decode()
    for login in ("alice", "bob"):  # a forced run's mail is due now: the daemon sends it at once
        sent = wait_until(lambda login=login: len(digests(sink, login)) == 2 and digests(sink, login), what="the second digest")
        text = sent[-1].get_body(("plain",)).get_content()
        assert re.findall(r"\[(MD-\d+)\]", text) == ["MD-12", "MD-13"] and "fred@flood.test: 2" in text
    jobs = d.cli("jobs", "list").stdout.decode()
    assert "notify_digest" in jobs and "60s" in jobs


def test_one_ticket_gets_notify_limit_notifications_whoever_writes(daemon_factory, sink):
    """Participants (Cc'd on the ticket) each write once: no sender is over the limit, the ticket is."""
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": AGENTS}, extra=LIMITED)
    cc = ", ".join(f"p{i}@customer.test" for i in range(6))
    send(d.port, make_mail(subject="Shared printer", cc=cc))
    quiet(d, sink, 1)
    for i in range(6):
        send(d.port, make_mail(subject="Re: [MD-1] Shared printer", body=f"me too {i}", sender=f"p{i}@customer.test"))
    quiet(d, sink, 7)
    assert len(d.json("tickets", "list")) == 1
    assert len(d.json("tickets", "show", "MD-1")["messages"]) >= 7  # all kept on the ticket
    for login in ("alice", "bob"):
        assert [m["X-Maildesk-Event"] for m in notifications(sink, login)] == ["new_ticket", "customer_reply", "customer_reply"]
    held = d.json("events", "list", "--kind", "notifications_held")
    assert len(held) == 4 and {e["detail"]["why"] for e in held} == {"ticket"}
    d.cli("jobs", "run", "notify_digest")
    quiet(d, sink, 7)
    text = digests(sink, "alice")[0].get_body(("plain",)).get_content()
    assert len(re.findall(r"\[MD-1\]  p\d@customer.test: Re: \[MD-1\] Shared printer \(customer reply; limit per ticket\)", text)) == 4


def test_notify_limit_zero_turns_the_limit_off(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": AGENTS},
                       extra="[workflow]\nnotify_limit = 0\n")
    for i in range(4):
        send(d.port, make_mail(subject=f"unlimited {i}", sender="fred@flood.test"))
    quiet(d, sink, 4)
    assert len(notifications(sink, "alice", "new_ticket")) == 4
    assert d.json("events", "list", "--kind", "notifications_held") == []


def test_forged_tokens_in_to_give_capped_security_events_and_addresses(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}")
    forged = ", ".join(f"support+t1-{'a' * 26}{i}@example.test" for i in range(150))
    send(d.port, make_mail(subject="forged tokens", to=forged), rcpt=["support@example.test"])
    plenty = ", ".join(f"user{i}@customer.test" for i in range(300))
    send(d.port, make_mail(subject="many recipients", sender="mia@customer.test", cc=plenty), rcpt=["support@example.test"])
    quiet(d, sink, 2)

    events = d.json("events", "list", "--kind", "security", "--limit", "1000")
    assert len(events) == 11  # 10 one by one, then one that counts the rest
    summary = [e for e in events if "more" in e["detail"]]
    assert len(summary) == 1 and summary[0]["detail"]["more"] == 90  # 100 addresses considered, 10 recorded
    assert "max_security_events" in summary[0]["detail"]["reason"]

    inbox = {r["id"]: r for r in d.json("inbox", "list")}
    assert "50 To/Cc address(es) beyond the first 100 ignored" in inbox[1]["outcome"]
    assert "201 To/Cc address(es) beyond the first 100 ignored" in inbox[2]["outcome"]
    people = d.json("tickets", "show", "MD-2")["participants"]
    assert len(people) == 100  # the requester and the first 99 Cc addresses (To: support is ours)
