"""A demo database for reports and search: N tickets over the last W weeks with customer
and agent messages, internal notes, status changes, ratings, on SQLite or PostgreSQL.
Deterministic (seeded); the text is generated here, not taken from any corpus.

    python bench/seed_demo.py sqlite:///var/demo.db --tickets 400 --weeks 6
    maildesk --config ... report --format html -o report.html
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maildesk.storage.models import Agent, Contact, Event, InboxMail, Rating, Ticket, TicketMessage
from maildesk.storage.store import open_store

__all__ = ["seed"]

TEAMS = {"support": ("alice", "bob", "carol"), "billing": ("dave", "erin"), "tier2": ("frank",)}
TOPICS = ("VPN drops every hour", "invoice shows the wrong VAT", "cannot log in after password reset", "export to CSV is empty",
          "printer driver for the new laptop", "refund for a double charge", "mailbox quota exceeded", "two-factor codes arrive late",
          "API returns 502 at night", "licence renewal quote")
WORDS = ["please", "help", "urgent", "again", "thanks", "since", "yesterday", "error", "screen", "customer", "order", "account", "server", "network", "update"]
DOMAINS = ("acme.example", "globex.example", "initech.example", "umbrella.example", "hooli.example")
SOURCES = ("smtp", "smtp", "smtp", "imap:support", "pipe")


def seed(url: str, tickets: int, weeks: float, now: datetime, *, batch: int = 2000, seed_value: int = 16) -> None:
    rnd = random.Random(seed_value)
    store = open_store(url)
    store.upgrade()
    start = now - timedelta(weeks=weeks)
    span = (now - start).total_seconds()
    with store.sessions.begin() as s:
        agents = {}
        for logins in TEAMS.values():
            for login in logins:
                agents[login] = Agent(login=login, name=login.title(), address=f"{login}@desk.example")
        s.add_all(agents.values())
        contacts = [Contact(address=f"user{i}@{DOMAINS[i % len(DOMAINS)]}", name=f"Customer {i}", created_at=start) for i in range(max(10, tickets // 3))]
        s.add_all(contacts)
        s.flush()
        agent_ids = {k: a.id for k, a in agents.items()}
        contact_ids = [c.id for c in contacts]
    done = 0
    while done < tickets:
        with store.sessions.begin() as s:
            for _ in range(min(batch, tickets - done)):
                done += 1
                created = start + timedelta(seconds=span * (done / tickets) + rnd.uniform(-3600, 3600))
                created = min(created, now - timedelta(minutes=5))
                team = rnd.choice(list(TEAMS))
                login = rnd.choice(TEAMS[team])
                topic = rnd.choice(TOPICS)
                prio = rnd.choices(("low", "normal", "high", "urgent"), (2, 6, 2, 1))[0]
                first = created + timedelta(hours=rnd.lognormvariate(0.8, 1.0))
                resolved = first + timedelta(hours=rnd.lognormvariate(2.5, 1.0))
                first = first if first < now and rnd.random() < 0.95 else None
                resolved = resolved if first and resolved < now and rnd.random() < 0.85 else None
                status = "closed" if resolved and rnd.random() < 0.4 else "resolved" if resolved else rnd.choice(("new", "open", "open", "pending"))
                t = Ticket(subject=topic, status=status, priority=prio, requester_id=rnd.choice(contact_ids), assignee_id=agent_ids[login], team=team,
                           created_at=created, updated_at=resolved or first or created, first_response_at=first, resolved_at=resolved,
                           spam=rnd.random() < 0.02, pauses=[], tags=[topic.split()[0].lower()])
                s.add(t)
                s.flush()
                source = rnd.choice(SOURCES)
                inbox = InboxMail(received_at=created, source=source, size=400, sha256=f"{t.id:064x}", raw=b"", status="processed", ticket_id=t.id,
                                  queue=source.split(":")[1] if ":" in source else None)
                s.add(inbox)
                s.flush()
                body = f"Hello, {topic}. Case {t.id}x{rnd.randrange(10**6)}. " + " ".join(rnd.choices(WORDS, k=25))
                s.add(TicketMessage(ticket_id=t.id, inbox_id=inbox.id, direction="in", kind="customer", from_addr="x", subject=topic, text=body,
                                    created_at=created))
                s.add(Event(ticket_id=t.id, at=created, actor="system", kind="created", detail={}))
                if first:
                    s.add(TicketMessage(ticket_id=t.id, direction="out", kind="agent_reply", from_addr=f"{login}@desk.example", subject=topic,
                                        text="Thanks, we are looking into it. " + " ".join(rnd.choices(WORDS, k=15)), created_at=first))
                    s.add(Event(ticket_id=t.id, at=first, actor=f"agent:{login}", kind="agent_reply", detail={}))
                if rnd.random() < 0.2:
                    s.add(TicketMessage(ticket_id=t.id, direction="int", kind="note", from_addr=f"{login}@desk.example", subject=topic,
                                        text="internal: checked the logs, escalate if it repeats", created_at=first or created))
                if resolved:
                    s.add(Event(ticket_id=t.id, at=resolved, actor=f"agent:{login}", kind="status", detail={"old": "open", "new": "resolved"}))
                    if rnd.random() < 0.06 and resolved + timedelta(days=1) < now:
                        s.add(Event(ticket_id=t.id, at=resolved + timedelta(days=1), actor="customer", kind="status",
                                    detail={"old": "resolved", "new": "open"}))
                    if rnd.random() < 0.35 and resolved + timedelta(hours=3) < now:
                        score = rnd.choices((1, 2, 3, 4, 5), (1, 1, 2, 4, 6))[0]
                        s.add(Rating(ticket_id=t.id, score=score, at=resolved + timedelta(hours=3),
                                     comment=rnd.choice(("", "", "quick and friendly", "took too long", "solved, thank you"))))
    store.dispose()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--tickets", type=int, default=400)
    p.add_argument("--weeks", type=float, default=6)
    args = p.parse_args(argv)
    seed(args.url, args.tickets, args.weeks, datetime.now(UTC).replace(microsecond=0))
    print(f"{args.tickets} tickets over {args.weeks:g} weeks in {args.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
