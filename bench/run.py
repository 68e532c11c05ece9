"""maildesk benchmark: one command, every figure of issue 8, a table or one JSON object.

    python bench/run.py                    # 20,000 messages, SQLite, 16 connections
    python bench/run.py --quick            # about 2,000 messages: a fast check
    python bench/run.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/run.py --json --runs 3    # medians of 3 runs of the SMTP phases

Phases: the do-nothing aiosmtpd ceiling and the real daemon under the same closed-loop
load (accept, processing, acknowledgement delivery, latencies, peak RSS), the fixed
offered load (100 msg/s), one 25 MB message, ``maildesk ingest`` through a pipe, the
threading lookup at 1,000,000 Message-IDs, the rules evaluation (bench/bench_rules.py),
and a 10,000-message IMAP backlog against a private Dovecot when one is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import extras, imapbench, phases
from bench.corpus import build
from bench.servers import ROOT, DaemonProcess, SinkProcess

__all__ = ["main"]


def _log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    commit_id = commit.stdout.strip() or os.environ.get("MAILDESK_BENCH_COMMIT", "unknown (not a git checkout)")
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": round(mem / 2**20, 1),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "kernel": platform.release(), "commit": commit_id}


class Databases:
    """A fresh database per phase: a file under the temp dir, or a new PostgreSQL schema."""

    def __init__(self, pg: str | None):
        self.pg, self.schemas = pg, []

    def url(self, directory: Path) -> str | None:
        if not self.pg:
            return None  # DaemonProcess puts SQLite under directory/var
        from sqlalchemy import create_engine, text

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        engine = create_engine(self.pg)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        self.schemas.append(schema)
        return f"{self.pg}{'&' if '?' in self.pg else '?'}options=-csearch_path%3D{schema}"

    def drop(self) -> None:
        if not self.schemas:
            return
        from sqlalchemy import create_engine, text

        engine = create_engine(self.pg)
        with engine.begin() as conn:
            for schema in self.schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def _phase(results: dict, name: str, fn, *args, **kwargs):
    _log(f"{name} ...")
    t0 = time.monotonic()
    try:
        results[name] = fn(*args, **kwargs)
    except Exception as exc:  # one broken phase must not hide the others' figures
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        traceback.print_exc(file=sys.stderr)
    _log(f"{name} done in {time.monotonic() - t0:.0f}s")
    return results[name]


def _save(args, results: dict) -> None:
    """--save PATH: the figures so far, after every phase (a run killed half-way keeps them)."""
    if args.save:
        Path(args.save).write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))


def _stop_on_sigterm() -> None:
    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)


def smtp_phases(args, tmp: Path, dbs: Databases, run: int) -> dict:
    """Ceiling, sustained run and offered load on one daemon (fresh database)."""
    out: dict = {}
    items, out["corpus"] = phases.corpus(args.messages, args.seed)
    _phase(out, "ceiling", phases.ceiling, items, args.concurrency)
    sink = SinkProcess()
    directory = tmp / f"smtp{run}"
    daemon = DaemonProcess(directory, sink.port, dbs.url(directory)).start()
    try:
        _phase(out, "sustained", phases.sustained, items, daemon, sink, args.concurrency)
        del items
        n = int(args.rate * args.offered_seconds)
        offered = [it for it in build(n * 2, args.seed + 1000 + run) if not it.dynamic][:n]
        _phase(out, "offered", phases.offered_load, offered, daemon, sink, args.rate, args.concurrency)
        out["daemon_errors"] = daemon.errors()
    finally:
        daemon.stop()
        sink.stop()
    return out


def _median_dict(runs: list[dict]) -> dict:
    """Per key: the median of the numbers, else the first run's value."""
    first = runs[0]
    if len(runs) == 1:
        return first
    out = {}
    for key, value in first.items():
        values = [r.get(key) for r in runs]
        if isinstance(value, dict):
            out[key] = _median_dict([v for v in values if isinstance(v, dict)])
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and all(
                isinstance(v, (int, float)) for v in values):
            out[key] = round(statistics.median(values), 3)
        else:
            out[key] = value
    return out


def targets(r: dict, full_size: bool) -> list[dict]:
    s, c, o = r.get("sustained", {}), r.get("ceiling", {}), r.get("offered", {})
    big, th = r.get("big_message", {}), r.get("threading", {})
    ratio = s.get("accepted_per_s", 0) / c["accepted_per_s"] if c.get("accepted_per_s") else None
    rss = [x.get("peak_rss_mb") for x in (s, o, big, r.get("imap", {})) if x.get("peak_rss_mb")]
    rows = [
        ("accept rate vs do-nothing aiosmtpd", ">= 80%", ratio, lambda v: v >= 0.8, lambda v: f"{v:.0%}"),
        ("fully processed, sustained" + ("" if full_size else " (quick run)"), ">= 300 msg/s",
         s.get("processed_per_s"), lambda v: v >= 300, lambda v: f"{v:.0f} msg/s"),
        (f"accept p99 at {r.get('rate', 100):.0f} msg/s offered", "< 50 ms", o.get("accept_p99_ms"),
         lambda v: v < 50, lambda v: f"{v:.1f} ms"),
        ("peak RSS", "< 250 MB", max(rss) if rss else None, lambda v: v < 250, lambda v: f"{v:.0f} MB"),
        ("25 MB message: peak / steady RSS", "<= 2.0", big.get("ratio"), lambda v: v <= 2.0, lambda v: f"{v:.2f}"),
        (f"threading lookup at {th.get('stored_message_ids', 0):,} ids", "< 1 ms", th.get("find_ticket_median_ms"),
         lambda v: v < 1.0, lambda v: f"{v:.3f} ms"),
    ]
    out = []
    for name, goal, value, ok, fmt in rows:
        out.append({"target": name, "goal": goal, "measured": fmt(value) if value is not None else "n/a",
                    "met": bool(ok(value)) if value is not None else None})
    return out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.3g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


_ROWS = [
    ("ceiling", "do-nothing aiosmtpd", [("accepted_per_s", "accepted / s"), ("accept_p99_ms", "accept p99 ms")]),
    ("sustained", "maildesk, closed loop", [
        ("accepted", "messages accepted"), ("accepted_per_s", "accepted / s"),
        ("processed_per_s", "fully processed / s (backlog)"), ("processed_all_per_s", "fully processed / s (incl. tail)"),
        ("acks_per_s", "acknowledgements delivered / s"), ("accept_p50_ms", "accept p50 ms"),
        ("accept_p95_ms", "accept p95 ms"), ("accept_p99_ms", "accept p99 ms"), ("e2e_p50_ms", "end-to-end p50 ms"),
        ("e2e_p99_ms", "end-to-end p99 ms"), ("peak_rss_mb", "daemon peak RSS MB"), ("failed", "inbox rows failed"),
        ("acks_delivered", "acknowledgements at the sink"), ("mails_at_sink", "mails at the sink (acks + notifications)"),
        ("mails_per_s", "mails delivered / s (all)"), ("notifications_after_acks_s", "last mail after last ack, s"),
        ("threaded_via", "inbound messages threaded by"),
        ("disk_kb_per_message", "on disk per inbound message, KB")]),
    ("offered", "maildesk, fixed offered load", [
        ("achieved_per_s", "offered / s"), ("accept_p50_ms", "accept p50 ms"), ("accept_p99_ms", "accept p99 ms"),
        ("e2e_p50_ms", "end-to-end p50 ms"), ("e2e_p99_ms", "end-to-end p99 ms"), ("max_pending", "max pending rows")]),
    ("big_message", "one 25 MB message", [
        ("steady_rss_mb", "steady RSS MB"), ("peak_rss_mb", "peak RSS MB"), ("ratio", "peak / steady"),
        ("accept_ms", "accept ms"), ("processed_s", "processed after s"), ("status", "inbox status")]),
    ("ingest_pipe", "maildesk ingest (a process per message)", [
        ("per_s", "messages / s"), ("per_message_ms_median", "per message ms (median)"), ("stored", "stored")]),
    ("threading", "threading lookup", [
        ("stored_message_ids", "stored Message-IDs"), ("find_ticket_median_ms", "find_ticket median ms"),
        ("find_ticket_p99_ms", "find_ticket p99 ms"), ("indexed_query_median_ms", "indexed query median ms")]),
    ("imap", "IMAP backlog", [
        ("messages", "messages"), ("fetched_per_s", "fetched / s"), ("processed_per_s", "processed / s"),
        ("seconds", "until all processed, s"), ("peak_rss_mb", "daemon peak RSS MB")]),
]


def table(r: dict) -> str:
    m = r["machine"]
    lines = [f"maildesk benchmark: {r['messages']:,} messages, {r['concurrency']} connections, {r['database']}, "
             f"{r['runs']} run(s){' (medians)' if r['runs'] > 1 else ''}",
             f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, load average at start "
             f"{m['loadavg_at_start'][0]}, Python {m['python']}, SQLite {m['sqlite']}, commit {m['commit']}", ""]
    for key, title, rows in _ROWS:
        sec = r.get(key)
        if sec is None:
            continue
        lines.append(title)
        if "error" in sec or sec.get("available") is False:
            lines.append(f"  {sec.get('error') or sec.get('note')}")
            continue
        for field, label in rows:
            if field in sec:
                lines.append(f"  {label:<42} {_fmt(sec[field])}")
    rules = r.get("rules", {})
    lines.append("rules evaluation (bench/bench_rules.py)")
    if not rules.get("available"):
        lines.append(f"  {rules.get('note', 'not available')}")
    for label, fig in rules.get("figures", {}).items():
        goal = f"(target < {fig['target_ms']} ms)" if fig.get("target_ms") else ""
        lines.append(f"  {label:<42} {fig['median_ms']:.3f} ms {goal}")
    if r.get("sustained", {}).get("accepted_per_s") and r.get("ceiling", {}).get("accepted_per_s"):
        lines.append(f"\nmaildesk accept rate = {r['sustained']['accepted_per_s'] / r['ceiling']['accepted_per_s']:.0%}"
                     " of the do-nothing aiosmtpd in the same run")
    lines += ["", "targets"]
    for t in r["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        lines.append(f"  {t['target']:<44} {t['goal']:<14} {t['measured']:<14} {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, help="messages in the sustained run (default 20000, --quick 2000)")
    ap.add_argument("--quick", action="store_true", help="a fast check: smaller runs everywhere")
    ap.add_argument("--concurrency", type=int, default=16, help="SMTP connections (default 16)")
    ap.add_argument("--pg", metavar="URL", help="use PostgreSQL (a fresh schema per phase) instead of SQLite")
    ap.add_argument("--rate", type=float, default=100.0, help="offered load in msg/s (default 100)")
    ap.add_argument("--runs", type=int, default=1, help="repeat the SMTP phases and report medians")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--skip-imap", action="store_true")
    ap.add_argument("--only", help="comma-separated phases: smtp,big,ingest,threading,rules,imap,cluster")
    ap.add_argument("--instances", type=int, default=0,
                    help="with --pg: also the cluster phase (bench/cluster.py), 1..N instances on PostgreSQL next to SQLite")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--save", metavar="PATH", help="also write the JSON object to PATH, updated after every phase")
    args = ap.parse_args(argv)
    args.messages = args.messages or (2_000 if args.quick else 20_000)
    args.offered_seconds = 10 if args.quick else 30
    only = set(args.only.split(",")) if args.only else {"smtp", "big", "ingest", "threading", "rules", "imap"}
    if args.skip_imap:
        only.discard("imap")
    if args.instances and args.pg:
        only.add("cluster")
    elif args.instances:
        ap.error("--instances needs --pg URL (the instances share one PostgreSQL database)")
    _stop_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="maildesk-bench."))
    dbs = Databases(args.pg)
    r: dict = {"messages": args.messages, "concurrency": args.concurrency, "rate": args.rate, "runs": args.runs,
               "quick": args.quick, "database": "PostgreSQL" if args.pg else "SQLite (WAL, synchronous=FULL)",
               "command": "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "machine": machine()}
    _log(f"temporary directory {tmp}")

    def phase(name: str, fn, *fargs) -> None:
        _phase(r, name, fn, *fargs)
        _save(args, {**r, "partial": True})

    try:
        if "smtp" in only:
            runs = []
            for k in range(args.runs):
                runs.append(smtp_phases(args, tmp, dbs, k))
                _save(args, {**r, "partial": True, "smtp_runs": runs})
            r["corpus"] = runs[0]["corpus"]
            for key in ("ceiling", "sustained", "offered"):
                r[key] = _median_dict([x[key] for x in runs if key in x and "error" not in x[key]] or [runs[0][key]])
            r["daemon_errors"] = runs[0].get("daemon_errors")
            if args.runs > 1:
                r["each_run"] = [{k: x.get(k) for k in ("ceiling", "sustained", "offered")} for x in runs]
        if "big" in only:
            phase("big_message", phases.big_message_rss, tmp / "big", dbs.url(tmp / "big"))
        if "ingest" in only:
            phase("ingest_pipe", extras.ingest_pipe, tmp / "ingest", dbs.url(tmp / "ingest"),
                  30 if args.quick else 300)
        if "threading" in only:
            url = dbs.url(tmp / "threading") or f"sqlite:///{tmp / 'threading.db'}"
            phase("threading", extras.threading_lookup, url, 200_000 if args.quick else 1_000_000)
        if "rules" in only:
            phase("rules", extras.rules, 100 if args.quick else 500)
        if "imap" in only:
            phase("imap", imapbench.imap_backlog, tmp / "imap", dbs.url(tmp / "imap"),
                  1_000 if args.quick else 10_000)
        if "cluster" in only and args.pg:
            from bench.cluster import cluster_phase
            from bench.cluster import table as cluster_table

            phase("cluster", cluster_phase, args.pg, args.instances or 3, min(args.messages, 2_000 if args.quick else 5_000),
                  args.concurrency, dbs.url)
            _log("cluster phase:\n" + cluster_table(r["cluster"]) if isinstance(r.get("cluster"), list) else "cluster phase failed")
    except KeyboardInterrupt as exc:
        _log(f"interrupted ({exc}); figures so far follow")
        r["interrupted"] = str(exc)
    finally:
        dbs.drop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    r["targets"] = targets(r, full_size=args.messages >= 20_000)
    _save(args, r)
    print(json.dumps(r, indent=2, ensure_ascii=False) if args.json else table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
