"""The measurements that drive a running daemon over SMTP: the do-nothing ceiling, the
sustained run, the fixed offered load, and the 25 MB message's effect on memory.

Every function returns a plain dict of figures (seconds are converted to ms where the
key says so); :mod:`bench.run` turns them into the table and the JSON object.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from bench.corpus import Item, big_message, build, small_message
from bench.loadgen import LoadResult, closed_loop, open_loop, percentile
from bench.servers import DaemonProcess, DbMonitor, NullProcess, SinkProcess

__all__ = ["Sampler", "big_message_rss", "ceiling", "corpus", "disk_per_message", "offered_load", "sustained", "wait_acks"]


def _ms(values: list[float], pct: float) -> float:
    return round(percentile(values, pct) * 1000, 2)


def _latencies(res: LoadResult) -> dict:
    lat = [s.latency for s in res.accepted]
    return {"accept_p50_ms": _ms(lat, 50), "accept_p95_ms": _ms(lat, 95), "accept_p99_ms": _ms(lat, 99),
            "accept_max_ms": _ms(lat, 100)}


def _e2e(res: LoadResult, sink: SinkProcess) -> dict:
    times = [ack["t"] - s.end_of_data for s in res.accepted if (ack := sink.ack_for(s.message_id)) is not None]
    return {"acks_matched": len(times), "e2e_p50_ms": _ms(times, 50), "e2e_p99_ms": _ms(times, 99)}


class Sampler:
    """Polls the inbox counts and the daemon's memory every ``interval`` seconds in a thread."""

    def __init__(self, daemon: DaemonProcess, interval: float = 0.1):
        self.daemon, self.interval = daemon, interval
        self.monitor = DbMonitor(daemon.db_url)
        self.samples: list[tuple[float, int, int, int]] = []  # (t, done, pending, failed)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def sample(self) -> tuple[float, int, int, int]:
        counts = self.monitor.counts()
        pending = counts.get("pending", 0)
        done = sum(counts.values()) - pending
        s = (time.monotonic(), done, pending, counts.get("failed", 0))
        self.samples.append(s)
        return s

    def _run(self) -> None:
        while not self.stop_flag.wait(self.interval):
            self.sample()

    def start(self) -> Sampler:
        self.thread.start()
        return self

    def wait_done(self, total: int, timeout: float) -> bool:
        """Until ``total`` rows are no longer pending; False on timeout or when nothing moves for a minute."""
        deadline, last, moved = time.monotonic() + timeout, -1, time.monotonic()
        while time.monotonic() < deadline:
            _, done, _, _ = self.samples[-1] if self.thread.is_alive() and self.samples else self.sample()
            if done >= total:
                return True
            if done != last:
                last, moved = done, time.monotonic()
            elif time.monotonic() - moved > 60:
                return False
            time.sleep(self.interval)
        return False

    def first_time(self, done: int) -> float | None:
        return next((t for t, d, _, _ in self.samples if d >= done), None)

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join()
        self.monitor.close()


def ceiling(items: list[Item], concurrency: int) -> dict:
    """The do-nothing aiosmtpd server under the same load (its own process)."""
    null = NullProcess()
    try:
        res = asyncio.run(closed_loop(items, null.port, concurrency))
    finally:
        null.stop()
    rate = res.main_count / max(1e-9, res.main_done - res.started)
    return {"messages": len(res.accepted), "accepted_per_s": round(rate, 1), **_latencies(res)}


def wait_acks(sink: SinkProcess, ids: list[str], timeout: float) -> None:
    deadline, last, moved = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        have = sum(1 for m in ids if sink.ack_for(m) is not None)
        if have >= len(ids):
            return
        if have != last:
            last, moved = have, time.monotonic()
        elif time.monotonic() - moved > 30:
            return
        time.sleep(0.5)


def wait_unsent(monitor, timeout: float) -> None:
    """Until the daemon has no outgoing mail left to render or send (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while monitor.unsent() and time.monotonic() < deadline:
        time.sleep(0.2)


def sustained(items: list[Item], daemon: DaemonProcess, sink: SinkProcess, concurrency: int) -> dict:
    """Closed-loop load on the real daemon; processing and delivery timed until all is done."""
    by_index = {it.index: it for it in items}

    def resolve(item: Item) -> dict | None:
        assert item.parent is not None
        return sink.ack_for(by_index[item.parent].message_id)

    sampler = Sampler(daemon)
    total_done = sampler.sample()[1]
    sampler.start()
    acks_before = sink.received
    try:
        res = asyncio.run(closed_loop(items, daemon.port, concurrency, resolve=resolve))
        accepted = res.accepted
        all_done = sampler.wait_done(total_done + len(accepted), timeout=max(300, len(items) / 20))
        expect = [by_index[s.index].message_id for s in accepted if by_index[s.index].expects_ack]
        wait_acks(sink, expect, timeout=max(120, len(items) / 20))
        final = sampler.sample()
        t_acks = time.monotonic()
        wait_unsent(sampler.monitor, timeout=max(120, len(items) / 10))
        t_sent = time.monotonic()
    finally:
        sampler.stop()
    main_rate = res.main_count / max(1e-9, res.main_done - res.started)
    t_main = sampler.first_time(total_done + res.main_count)
    t_all = sampler.first_time(total_done + len(accepted))
    ack_times = [a["t"] for s in accepted if (a := sink.ack_for(s.message_id)) is not None]
    out = {
        "messages": len(items), "accepted": len(accepted), "refused": len(res.sent) - len(accepted),
        "held_back_then_sent": len(res.sent) - res.main_count, "skipped_no_ack": res.skipped,
        "accepted_per_s": round(main_rate, 1),
        "accept_seconds": round(res.main_done - res.started, 2),
        "processed_per_s": round(res.main_count / (t_main - res.started), 1) if t_main else None,
        "processed_all_per_s": round(len(accepted) / (t_all - res.started), 1) if t_all else None,
        "all_processed": all_done, "failed": final[3], "pending_left": final[2],
        "acks_expected": len(expect), "acks_delivered": len(ack_times),
        "acks_per_s": round(len(ack_times) / (max(ack_times) - res.started), 1) if ack_times else None,
        "mails_at_sink": sink.received - acks_before,
        "mails_per_s": round((sink.received - acks_before) / (t_sent - res.started), 1),
        "notifications_after_acks_s": round(t_sent - t_acks, 1),
        "peak_rss_mb": round(daemon.status("VmHWM") / 2**20, 1),
        **_latencies(res), **_e2e(res, sink), "load_errors": res.errors,
    }
    mon = DbMonitor(daemon.db_url)
    try:
        out["threaded_via"] = dict(mon.query("SELECT coalesce(thread_via, '-'), count(*) FROM messages "
                                             "WHERE direction = 'in' GROUP BY thread_via"))
        out["tickets"] = mon.query("SELECT count(*) FROM tickets")[0][0]
        out["failures"] = [r[0][:300] for r in mon.query("SELECT error FROM inbox WHERE status = 'failed' LIMIT 3")]
        disk = disk_per_message(mon, daemon.db_url)
        out["disk_kb_per_message"] = {k: round(v / 1000, 1) for k, v in disk.items() if k != "messages"}
    finally:
        mon.close()
    return out


def disk_per_message(monitor: DbMonitor, db_url: str) -> dict:
    """Bytes stored per inbound mail: ``raw`` (the inbox rows' bytes), ``derived`` (the text and
    HTML kept on the ticket, attachments), ``outgoing`` (outbox bodies not yet purged), and the
    database file with its WAL (SQLite) or the tables (PostgreSQL) divided by the inbound mails."""
    q = lambda sql: monitor.query(sql)[0][0] or 0  # noqa: E731
    n = max(1, q("SELECT count(*) FROM inbox"))
    raw = q("SELECT sum(length(raw)) FROM inbox_raw")
    derived = q("SELECT sum(coalesce(length(text), 0) + coalesce(length(html), 0)) FROM messages WHERE direction = 'in'") \
        + q("SELECT sum(length(data)) FROM blobs")
    outgoing = q("SELECT sum(length(raw)) FROM outbox_bodies")
    if db_url.startswith("sqlite"):
        path = Path(db_url.split("///", 1)[1])
        file = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    else:
        file = q("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                 "WHERE n.nspname = current_schema() AND c.relkind = 'r'")
    return {"messages": n, "raw": raw // n, "derived": derived // n, "outgoing": outgoing // n, "file": file // n}


def offered_load(items: list[Item], daemon: DaemonProcess, sink: SinkProcess, rate: float, concurrency: int) -> dict:
    """Accept latency at a fixed offered load, on a daemon that is otherwise idle (what the
    sustained run left to deliver, the agents' notifications mostly, is sent first)."""
    sampler = Sampler(daemon)
    wait_unsent(sampler.monitor, timeout=max(120, len(items) / 5))
    base = sampler.sample()[1]
    sampler.start()
    try:
        res = asyncio.run(open_loop(items, daemon.port, rate, concurrency))
        sampler.wait_done(base + len(res.accepted), timeout=max(120, len(items) / 5))
        wait_acks(sink, [it.message_id for it in items if it.expects_ack], timeout=60)
        backlog = max(p for _, _, p, _ in sampler.samples)
    finally:
        sampler.stop()
    late = [s.scheduled_delay for s in res.sent]
    return {"rate": rate, "messages": len(res.accepted), "seconds": round(res.finished - res.started, 1),
            "achieved_per_s": round(len(res.sent) / max(1e-9, res.finished - res.started), 1),
            "max_pending": backlog, "sender_late_p99_ms": _ms(late, 99), **_latencies(res), **_e2e(res, sink),
            "peak_rss_mb": round(daemon.status("VmHWM") / 2**20, 1)}


def big_message_rss(directory: Path, db_url: str | None, warmup: int = 300) -> dict:
    """Steady RSS after ``warmup`` ordinary messages, then the peak while one 25 MB message
    is accepted, processed and acknowledged (VmHWM reset just before it)."""
    sink = SinkProcess()
    daemon = DaemonProcess(directory, sink.port, db_url).start()
    try:
        warm = [small_message(i) for i in range(warmup)]
        asyncio.run(closed_loop(warm, daemon.port, 4))
        sampler = Sampler(daemon)
        sampler.wait_done(warmup, timeout=120)
        wait_acks(sink, [m.message_id for m in warm], timeout=60)
        time.sleep(1.0)
        steady = daemon.status("VmRSS")
        reset = daemon.reset_peak()
        big = big_message()
        t0 = time.monotonic()
        res = asyncio.run(closed_loop([big], daemon.port, 1))
        done = sampler.wait_done(warmup + 1, timeout=300)
        processed_s = time.monotonic() - t0
        wait_acks(sink, [big.message_id], timeout=60)
        peak = daemon.status("VmHWM")
        sampler.monitor.close()
        status = DbMonitor(daemon.db_url)
        outcome = status.query("SELECT status, coalesce(error, outcome) FROM inbox ORDER BY id DESC LIMIT 1")
        status.close()
    finally:
        daemon.stop()
        sink.stop()
    ok = res.accepted and done
    return {"size_mb": round(len(big.data) / 1e6, 1), "accepted": bool(res.accepted), "processed": bool(done),
            "status": outcome[0][0] if outcome else None, "outcome": (outcome[0][1] or "")[:160] if outcome else None,
            "accept_ms": round(res.sent[0].latency * 1000, 1) if res.sent else None,
            "processed_s": round(processed_s, 2) if ok else None, "acked": sink.ack_for(big.message_id) is not None,
            "steady_rss_mb": round(steady / 2**20, 1), "peak_rss_mb": round(peak / 2**20, 1),
            "peak_reset": reset, "ratio": round(peak / steady, 2) if steady else None}


def corpus(n: int, seed: int) -> tuple[list[Item], dict]:
    t0 = time.monotonic()
    items = build(n, seed)
    sizes = [len(i.data) for i in items]
    kinds: dict[str, int] = {}
    for it in items:
        kinds[it.kind] = kinds.get(it.kind, 0) + 1
    return items, {"messages": n, "seed": seed, "build_s": round(time.monotonic() - t0, 1),
                   "total_mb": round(sum(sizes) / 1e6, 1), "min_kb": round(min(sizes) / 1e3, 1),
                   "median_kb": round(sorted(sizes)[len(sizes) // 2] / 1e3, 1), "max_kb": round(max(sizes) / 1e3, 1),
                   "kinds": kinds,
                   "with_attachment": sum(1 for i in items if b"Content-Disposition: attachment" in i.data)}
