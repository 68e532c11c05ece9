"""Three real ``maildesk run`` instances on one PostgreSQL database (issue 18): mail spread
over their listeners, one instance SIGKILLed (daemon and workers) halfway and started
again, and then: every message that got a 250 stored once and processed once, replies on
their parent's ticket, no outgoing Message-ID delivered twice beyond the documented
window, nothing left claimed or pending.

It sends 3,000 messages: 1,250 new tickets, 250 of them answered at once by two replies at
two other instances at the same moment (by header), then one reply per ticket, half by token
and half by subject. Then the SLA job runs on all three instances at the same moment, as of
three hours later: each ticket's three escalation steps are recorded once and its escalation
mail reaches the sink once. ``MAILDESK_CLUSTER_TICKETS`` changes the size (messages = 2.4 x
tickets). Skips without PostgreSQL (fails instead under MAILDESK_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import smtplib
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser

from sqlalchemy import create_engine, text

from maildesk.process.claim import NAMESPACE_SQL
from tests.support.config import write_config
from tests.support.mail import make_mail
from tests.support.servers import MaildeskProcess, free_port, wait_until

TICKETS = int(os.environ.get("MAILDESK_CLUSTER_TICKETS", "1250"))
PAIRS = TICKETS // 5  # originals answered by two replies at two other instances at the same moment
ESCALATE_TO = "escalate@example.test"
# Every fifth ticket (X-Test-SLA: short) gets a one-hour first-response target with three
# escalation steps; the others a target far away that nothing reaches during the test.
SLA = f"""
[select]
default = "relaxed"
[hours.always]
timezone = "UTC"
always_open = true
[policy.short]
hours = "always"
[policy.short.first_response]
normal = "1h"
[[policy.short.escalation]]
target = "first_response"
notify = "{ESCALATE_TO}"
[[policy.short.escalation]]
target = "first_response"
after = "1h"
raise_priority = true
[[policy.short.escalation]]
target = "first_response"
after = "2h"
reassign_team = "tier2"
[policy.relaxed]
hours = "always"
[policy.relaxed.first_response]
normal = "30d"
"""
RULES = """
[[rule]]
name = "short-sla"
when = { header = { name = "X-Test-SLA", equals = "short" } }
then = { sla = "short" }
"""


class SinkHeaders:
    """The headers of what reached the sink, parsed once each (a full parse of thousands of
    mails on every poll would cost the instances the CPU the test is measuring)."""

    def __init__(self, sink):
        self.sink, self.seen = sink, []

    def __call__(self) -> list:
        with self.sink.cond:
            new = self.sink.messages[len(self.seen):]
        self.seen.extend(BytesHeaderParser(policy=policy.default).parsebytes(e.original_content) for e in new)
        return self.seen


def _send(port: int, msg) -> bool:
    """True when the instance answered 250 to the message."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.send_message(msg)
        return True
    except (OSError, smtplib.SMTPException):
        return False


class Cluster:
    def __init__(self, tmp_path, pg_url: str, sink_port: int, n: int = 3):
        self.nodes = []
        for i in range(n):
            cfg = write_config(tmp_path / f"node{i}", port=free_port(), db_url=pg_url, smarthost=f"127.0.0.1:{sink_port}",
                               files={"sla.toml": SLA, "rules.toml": RULES})
            self.nodes.append(MaildeskProcess(cfg))
        self.nodes[0].cli("db", "upgrade")  # once, before any instance starts
        self.down: set[int] = set()
        for node in self.nodes:
            node.start()

    def port(self, k: int) -> int:
        live = [i for i in range(len(self.nodes)) if i not in self.down]
        return self.nodes[live[k % len(live)]].port

    def stop(self):
        for node in self.nodes:
            node.stop()


def test_three_instances_one_killed_halfway(pg_url, sink, tmp_path):
    sink.data_delay = 0.005  # delivery takes a little time: a kill lands inside a batch
    cluster = Cluster(tmp_path, pg_url, sink.port)
    accepted: dict[str, tuple[str, str | None]] = {}  # Message-ID -> (kind, parent Message-ID)
    lock = threading.Lock()
    started = time.monotonic()

    def send(k: int, msg, kind: str, parent: str | None = None):
        if _send(cluster.port(k), msg):
            with lock:
                accepted[msg["Message-ID"]] = (kind, parent)

    def original(i: int):
        msg = make_mail(subject=f"Cluster case {i}", sender=f"Customer {i} <c{i}@customer.test>",
                        message_id=f"<orig{i}@customer.test>", cc=f"Colleague {i} <k{i}@customer.test>" if i < PAIRS else None,
                        headers={"X-Test-SLA": "short"} if i % 5 == 0 else None)
        if i >= PAIRS:
            send(i, msg, "new")
            return
        # Accepted, then at once two replies to the brand-new ticket at two other instances at
        # the same moment: the customer's and a colleague's (by header).
        send(i, msg, "new")
        if msg["Message-ID"] not in accepted:
            return
        replies = [(i + 1, make_mail(subject=f"Re: Cluster case {i}", sender=f"Customer {i} <c{i}@customer.test>",
                                     message_id=f"<pair{i}@customer.test>", in_reply_to=msg["Message-ID"])),
                   (i + 2, make_mail(subject=f"Re: Cluster case {i}", sender=f"Colleague {i} <k{i}@customer.test>",
                                     message_id=f"<peer{i}@customer.test>", in_reply_to=msg["Message-ID"],
                                     references=msg["Message-ID"]))]
        gate = threading.Barrier(2)

        def go(k, m):
            gate.wait()
            send(k, m, "header", msg["Message-ID"])

        ts = [threading.Thread(target=go, args=r) for r in replies]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(original, range(TICKETS // 2)))
        print(f"{time.monotonic() - started:6.1f}s first half sent")
        # Halfway: the whole of instance 1 dies at once (daemon and workers), then comes back.
        cluster.down.add(1)
        cluster.nodes[1].kill_group()
        list(pool.map(original, range(TICKETS // 2, TICKETS)))
        print(f"{time.monotonic() - started:6.1f}s second half sent")
        cluster.nodes[1].start()
        print(f"{time.monotonic() - started:6.1f}s restarted")
        cluster.down.discard(1)

    engine = create_engine(pg_url)
    try:
        def q(sql, **kw):
            with engine.connect() as conn:
                return conn.execute(text(sql), kw).all()

        originals = [m for m, (kind, _) in accepted.items() if kind == "new"]
        wait_until(lambda: not q("SELECT 1 FROM inbox WHERE status = 'pending' LIMIT 1"), timeout=120, what="the inbox processed")
        print(f"{time.monotonic() - started:6.1f}s originals processed")
        # Acknowledgements at the sink: their Reply-To carries each ticket's token.
        wanted = set(originals)
        seen = SinkHeaders(sink)
        wait_until(lambda: wanted <= {m["In-Reply-To"] for m in seen()}, timeout=120, what="an acknowledgement of each ticket")
        print(f"{time.monotonic() - started:6.1f}s acks at sink")
        acks = [m for m in seen() if m["In-Reply-To"] in wanted]
        token_of = {a["In-Reply-To"]: str(a["Reply-To"].addresses[0].addr_spec) for a in acks}
        ticket_of = dict(q("SELECT message_id, ticket_id FROM inbox WHERE status = 'processed'"))

        def follow_up(j: int):
            parent = originals[j]
            i = int(parent.removeprefix("<orig").split("@")[0])
            sender = f"Customer {i} <c{i}@customer.test>"
            if j % 2:  # by token: to the ticket's signed reply address, no threading headers
                msg = make_mail(subject="one more thing", sender=sender, to=token_of[parent], message_id=f"<tok{i}@customer.test>")
                send(j, msg, "token", parent)
            else:  # by subject: the ticket's reference, from its requester
                msg = make_mail(subject=f"Re: [MD-{ticket_of[parent]}] Cluster case {i}", sender=sender,
                                message_id=f"<subj{i}@customer.test>")
                send(j, msg, "subject", parent)

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(follow_up, range(len(originals))))
            print(f"{time.monotonic() - started:6.1f}s follow-ups sent")
        wait_until(lambda: not q("SELECT 1 FROM inbox WHERE status = 'pending' LIMIT 1"), timeout=120, what="the replies processed")
        print(f"{time.monotonic() - started:6.1f}s follow-ups processed")

        # The SLA job started on all three instances at the same moment, as of 3 hours later:
        # each ticket of the short policy has breached its first response and is due all three
        # escalation steps.
        at = (datetime.now(UTC) + timedelta(hours=3, minutes=1)).isoformat()
        gate = threading.Barrier(len(cluster.nodes))

        def check_sla(node):
            gate.wait()
            t = time.monotonic()
            out = node.cli("jobs", "run", "check_sla", "--at", at, "--force").stdout.decode()
            print(f"check_sla CLI {time.monotonic() - t:.1f}s: {out.strip()}")
            return out

        with ThreadPoolExecutor(len(cluster.nodes)) as pool:
            results = list(pool.map(check_sla, cluster.nodes))
            print(f"{time.monotonic() - started:6.1f}s check_sla run")
        steps = Counter((t, int(s)) for t, s in q("SELECT ticket_id, detail->>'step' FROM events WHERE kind = 'escalation'"))
        short = {ticket_of[m] for m in originals if int(m.removeprefix("<orig").split("@")[0]) % 5 == 0}
        assert short and set(steps) == {(t, k) for t in short for k in (0, 1, 2)}, results
        assert set(steps.values()) == {1}, {k: n for k, n in steps.items() if n > 1}
        assert Counter(kind for (kind,) in q("SELECT kind FROM events WHERE kind IN ('sla_breach', 'escalation')")) == \
            {"sla_breach": len(short), "escalation": 3 * len(short)}

        # Every message that got a 250 is stored once and processed once.
        rows = q("SELECT message_id, status, ticket_id FROM inbox")
        stored = Counter(r[0] for r in rows)
        missing = [m for m in accepted if stored[m] == 0]
        assert not missing, f"accepted but not stored: {missing[:5]}"
        assert all(stored[m] == 1 for m in accepted), {m: n for m, n in stored.items() if n > 1}
        assert {r[1] for r in rows} == {"processed"}, Counter(r[1] for r in rows)
        ticket_of = {r[0]: r[2] for r in rows}
        # Replies are on their parent's ticket; every new mail opened its own.
        wrong = {m: (kind, ticket_of[m], ticket_of[p]) for m, (kind, p) in accepted.items() if p and ticket_of[m] != ticket_of[p]}
        assert not wrong, f"replies not on their parent's ticket: {wrong}"
        assert len({ticket_of[m] for m in originals}) == len(originals)
        assert q("SELECT count(*) FROM tickets")[0][0] == len(originals), "a reply opened a ticket of its own"
        # No outgoing mail delivered twice beyond the window: one mail per killed delivery worker.
        wait_until(lambda: not q("SELECT 1 FROM outbox WHERE status IN ('queued', 'sending') LIMIT 1"), timeout=120,
                   what="the outbox delivered")
        counts = Counter(str(m["Message-ID"]).strip() for m in seen())
        twice = {m: n for m, n in counts.items() if n > 1}
        assert sum(n - 1 for n in twice.values()) <= 1, f"delivered twice: {twice}"
        assert q("SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0] == len(counts)
        escalated = Counter(m["Subject"] for m in seen() if any(a.addr_spec == ESCALATE_TO for a in m["To"].addresses))
        assert len(escalated) == len(short) and set(escalated.values()) == {1}, "an escalation mail sent twice or not at all"
        # Nothing left claimed: no outbox lease, no inbox row held (process/claim.py), nothing pending.
        assert not q("SELECT id FROM outbox WHERE claimed_by IS NOT NULL OR status = 'sending'")
        assert not q("SELECT id FROM inbox WHERE status <> 'processed'")
        claims = f"SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid = CAST({NAMESPACE_SQL} AS oid)"
        wait_until(lambda: not q(claims), timeout=10, what="the inbox claims released")
        print(f"{time.monotonic() - started:6.1f}s checked")  # the phases' times show with pytest -s
    finally:
        engine.dispose()
        cluster.stop()
