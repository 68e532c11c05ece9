"""Measurements without SMTP load: ``maildesk ingest`` through a pipe, the threading
lookup at 1,000,000 stored Message-IDs, and the rules evaluation (bench/bench_rules.py)."""

from __future__ import annotations

import random
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.corpus import build
from bench.servers import ROOT, DaemonProcess, DbMonitor

__all__ = ["ingest_pipe", "rules", "threading_lookup"]


def ingest_pipe(directory: Path, db_url: str | None, n: int) -> dict:
    """``maildesk ingest`` once per message, one after the other, as an MTA's pipe transport
    runs it (a new process each time: interpreter start, imports, one committed row)."""
    daemon = DaemonProcess(directory, smarthost_port=9, db_url=db_url)  # configured, never started
    daemon.cli("db", "upgrade")
    items = [it for it in build(n * 2, seed=11) if not it.dynamic][:n]
    env = daemon.env()
    base = [sys.executable, "-m", "maildesk", "--config", str(daemon.config), "ingest"]
    codes: dict[int, int] = {}
    times = []
    t0 = time.monotonic()
    for it in items:
        t = time.monotonic()
        res = subprocess.run([*base, "--sender", it.mail_from, "-r", it.rcpt], input=it.raw().replace(b"\r\n", b"\n"),
                             capture_output=True, env=env, timeout=120)
        times.append(time.monotonic() - t)
        codes[res.returncode] = codes.get(res.returncode, 0) + 1
    total = time.monotonic() - t0
    mon = DbMonitor(daemon.db_url)
    stored = mon.query("SELECT count(*) FROM inbox")[0][0]
    mon.close()
    return {"messages": n, "stored": stored, "exit_codes": codes, "per_s": round(n / total, 1),
            "per_message_ms_median": round(statistics.median(times) * 1000, 1)}


def _msgid(rng: random.Random, i: int) -> str:
    return f"<{rng.getrandbits(64):016x}.{i}@mail{i % 997}.customer.example.org>"


def threading_lookup(db_url: str, n: int = 1_000_000, tickets: int = 50_000, lookups: int = 2_000) -> dict:
    """Bulk-load ``n`` Message-IDs over ``tickets`` tickets, then time ``correlate.find_ticket``
    for a reply whose In-Reply-To is one of them (and the bare indexed query)."""
    from sqlalchemy import insert, select

    from maildesk.parse.message import parse
    from maildesk.process.correlate import find_ticket
    from maildesk.storage.models import Contact, MessageRef, Ticket
    from maildesk.storage.store import open_store

    store = open_store(db_url)
    store.upgrade()
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    t0 = time.monotonic()
    with store.transaction() as s:
        s.execute(insert(Contact), [{"address": "someone@customer.example.org", "name": "", "created_at": now}])
        cid = s.scalars(select(Contact.id)).one()
        s.execute(insert(Ticket), [{"subject": f"ticket {i}", "status": "open", "priority": "normal", "requester_id": cid,
                                    "tags": [], "created_at": now, "updated_at": now} for i in range(tickets)])
        first = s.scalars(select(Ticket.id).order_by(Ticket.id).limit(1)).one()
    rng = random.Random(5)
    rows = ((_msgid(rng, i), first + i % tickets, "in" if i % 3 else "out") for i in range(n))
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        if store.is_sqlite:
            cur.execute("BEGIN")
            cur.executemany("INSERT INTO message_ids (message_id, ticket_id, direction) VALUES (?, ?, ?)", rows)
            cur.execute("COMMIT")
        else:
            with cur.copy("COPY message_ids (message_id, ticket_id, direction) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        cur.execute("ANALYZE")
        if not store.is_sqlite:
            raw.commit()
    finally:
        raw.close()
    load_s = time.monotonic() - t0
    rng = random.Random(5)
    ids = [_msgid(rng, i) for i in range(n)]
    pick = random.Random(9)
    msgs = []
    for k in range(lookups):
        target = ids[pick.randrange(n)]
        raw_mail = (f"From: a{k}@customer.example.org\r\nTo: support@example.test\r\nSubject: Re: question {k}\r\n"
                    f"Message-ID: <reply.{k}@customer.example.org>\r\nIn-Reply-To: {target}\r\n"
                    f"References: <missing.{k}@elsewhere.example.net> {target}\r\n\r\nThanks!\r\n").encode()
        msgs.append((target, parse(raw_mail, rcpt_to=("support@example.test",))))
    full, bare, misses = [], [], 0
    with store.read() as s:
        for target, msg in msgs:
            t = time.perf_counter()
            match = find_ticket(s, msg, secret="bench", support=("support@example.test",), prefix="MD")
            full.append(time.perf_counter() - t)
            misses += match.ticket is None
            t = time.perf_counter()
            s.execute(select(MessageRef.ticket_id).where(MessageRef.message_id == target)).scalar_one()
            bare.append(time.perf_counter() - t)
            s.expunge_all()
    store.dispose()
    return {"stored_message_ids": n, "tickets": tickets, "load_s": round(load_s, 1), "lookups": lookups,
            "not_found": misses, "find_ticket_median_ms": round(statistics.median(full) * 1000, 3),
            "find_ticket_p99_ms": round(sorted(full)[int(0.99 * len(full))] * 1000, 3),
            "indexed_query_median_ms": round(statistics.median(bare) * 1000, 3)}


def rules(runs: int = 300) -> dict:
    """bench/bench_rules.py (written separately), when present: its median figures."""
    script = ROOT / "bench" / "bench_rules.py"
    if not script.exists():
        return {"available": False, "note": "not available (bench/bench_rules.py is missing)"}
    res = subprocess.run([sys.executable, str(script), "--runs", str(runs)], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    if res.returncode != 0:
        return {"available": False, "note": f"bench_rules.py failed: {res.stderr.strip().splitlines()[-1:]}"}
    figures = {}
    for line in res.stdout.splitlines():
        found = re.match(r"\s*(.+?):\s+median ([\d.]+) ms(?:\s+\(target < ([\d.]+) ms\))?", line)
        if found:
            label = re.sub(r"\s+", " ", found.group(1)).strip()
            figures[label] = {"median_ms": float(found.group(2)),
                              "target_ms": float(found.group(3)) if found.group(3) else None}
    return {"available": True, "figures": figures, "output": res.stdout.strip().splitlines()}
