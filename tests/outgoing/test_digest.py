"""The weekly digest: one mail per team lead (plus [workflow] digest_to), HTML with every
chart as an inline PNG referenced by cid:, a text alternative with the same figures, the
previous week compared, the tickets at risk listed; sent once per week; in `jobs list`;
delivered to the sink by the real daemon."""

from __future__ import annotations

import email
import smtplib
from datetime import UTC, datetime, timedelta
from email import policy
from html.parser import HTMLParser

from sqlalchemy import select

from maildesk.daemon.scheduler import run_job
from maildesk.storage.models import Outbox, Ticket
from tests.daemon.test_jobs import RULES, SLA, T0, jdesk  # noqa: F401 - jdesk is a fixture
from tests.support.agents import AGENTS
from tests.support.desk import deliver
from tests.support.mail import make_mail
from tests.support.servers import wait_until

MONDAY = T0 + timedelta(days=7, hours=1)  # T0 is Monday 2026-11-23 09:00 UTC: the digest of that week goes out a week later


class _Imgs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.fetches = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a["src"])
        if tag in ("script", "link") or (a.get("href") or "").startswith("http"):
            self.fetches.append(tag)


def check_digest(raw: bytes, team_word: str) -> str:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative" and msg["Auto-Submitted"] == "auto-generated"
    plain, related = msg.get_payload()
    assert plain.get_content_type() == "text/plain" and related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html" and len(images) == 6
    page = _Imgs()
    page.feed(html_part.get_content())
    cids = {f"cid:{i['Content-ID'].strip('<>')}" for i in images}
    assert set(page.srcs) == cids and page.fetches == []
    for i in images:
        assert i.get_content_type() == "image/png" and i.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    text = plain.get_content()
    assert team_word in text and "vs previous week" in text
    return text


def test_digest_goes_to_the_team_lead_once_a_week(jdesk):  # noqa: F811 - the fixture of tests/daemon/test_jobs.py
    deliver(jdesk, make_mail(subject="VPN down"))
    deliver(jdesk, make_mail(subject="Second", sender="Max <max@other.test>"))
    with jdesk.store.transaction() as s:
        t = s.get(Ticket, 1)
        t.first_response_at, t.status, t.resolved_at = T0 + timedelta(hours=1), "resolved", T0 + timedelta(hours=5)
    assert run_job(jdesk, "digest", MONDAY) == "1 digest(s) queued for the week of 2026-11-23"
    assert run_job(jdesk, "digest", MONDAY + timedelta(hours=1)) == "the digest for the week of 2026-11-23 was sent already"
    with jdesk.store.read() as s:
        rows = list(s.scalars(select(Outbox).where(Outbox.kind == "digest")))
        assert len(rows) == 1 and rows[0].rcpt_to == ["alice@example.test"]
        text = check_digest(rows[0].raw, "team support")
    assert "Tickets created: 2 (+2 vs previous week)" in text
    assert "MD-2" in text and "breached" in text  # ticket 2 never answered: 4h first response long past


def test_digest_in_jobs_list_dry_run_and_delivered_to_the_sink(daemon_factory, sink):
    md = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": AGENTS, "rules.toml": RULES, "sla.toml": SLA})
    assert "digest" in md.cli("jobs", "list").stdout.decode()
    with smtplib.SMTP("127.0.0.1", md.port) as smtp:
        smtp.sendmail("jane@customer.test", ["support@example.test"], make_mail(subject="Printer", body="jammed").as_bytes())
    wait_until(lambda: md.json("tickets", "list"), what="the ticket")
    assert "nothing to report" in md.cli("jobs", "run", "digest").stdout.decode()  # the ticket is from this week
    next_week = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    dry = md.cli("jobs", "run", "digest", "--at", next_week, "--dry-run").stdout.decode()
    assert "digest to alice@example.test" in dry
    md.cli("jobs", "run", "digest", "--at", next_week, "--force")
    got = sink.wait_for(lambda m: "weekly digest" in (m.get("Subject") or ""), timeout=30)
    check_digest(got[0].as_bytes(), "team support")
