"""Scaling across instances (issue 18): processed msg/s and accept p99 for 1, 2 and 3
``maildesk run`` instances on one PostgreSQL database, next to one instance on SQLite, with
the CPU each process tree used, so the scaling can be judged on a small machine too.

    python bench/cluster.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/test --instances 3
    python bench/run.py --pg URL --instances 3      # the same phase from the main benchmark

The load: ``--messages`` mails over ``--concurrency`` SMTP connections spread round-robin
over the instances' listeners, three new tickets for one reply by header. Each run starts
on a fresh database (a new schema) and a fresh sink. "processed msg/s" is messages divided
by the time from the first send until no inbox row is pending; "per CPU-second" divides
the messages by the CPU seconds all maildesk processes used (daemons and their workers),
which is the figure to compare on a machine with fewer cores than processes.
"""

from __future__ import annotations

import argparse
import json
import smtplib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import DaemonProcess, DbMonitor, SinkProcess

__all__ = ["cluster_phase", "main"]

_TICKS = 100.0  # os.sysconf("SC_CLK_TCK") on Linux


def _tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of ``pid`` (the daemon: listener and intake) and of each of
    its living worker processes: the processing worker, then the delivery worker (started in
    that order, so by increasing pid); any other descendant (multiprocessing's resource
    tracker) is added to "other"."""
    procs: dict[int, tuple[int, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        procs[int(stat.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS)
    out = {"daemon": procs.get(pid, (0, 0.0))[1], "process": 0.0, "deliver": 0.0, "other": 0.0}
    children = sorted(c for c, (ppid, _) in procs.items() if ppid == pid)
    workers = [c for c in children if b"spawn_main" in _cmdline(c)]  # not multiprocessing's resource tracker
    for child in children:
        todo, total = [child], 0.0
        while todo:
            p = todo.pop()
            total += procs.get(p, (0, 0.0))[1]
            todo.extend(c for c, (ppid, _) in procs.items() if ppid == p)
        k = workers.index(child) if child in workers else 2
        out[("process", "deliver", "other")[min(k, 2)]] += total
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _mails(n: int) -> list[EmailMessage]:
    out = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = f"Customer {i} <c{i}@customer.test>"
        msg["To"] = "support@example.test"
        msg["Message-ID"] = f"<bench{i}@customer.test>"
        if i % 4 == 3:  # a reply by header to the mail three before it
            msg["Subject"] = f"Re: Case {i - 3}"
            msg["In-Reply-To"] = f"<bench{i - 3}@customer.test>"
        else:
            msg["Subject"] = f"Case {i}"
        msg.set_content(f"Message {i}: the printer is on fire again.\n" * 5)
        out.append(msg)
    return out


def _one_run(n_instances: int, db_url: str | None, messages: int, concurrency: int, tmp: Path) -> dict:
    sink = SinkProcess()
    daemons = []
    try:
        for k in range(n_instances):
            daemons.append(DaemonProcess(tmp / f"i{k}", sink.port, daemons[0].db_url if daemons else db_url).start())
        monitor = DbMonitor(daemons[0].db_url)
        cpu0 = [_tree_cpu(d.pid) for d in daemons]
        mails = _mails(messages)
        latencies: list[float] = []

        def worker(w: int) -> None:
            conns: dict[int, smtplib.SMTP] = {}
            try:
                for i in range(w, messages, concurrency):
                    d = daemons[i % n_instances]
                    smtp = conns.get(d.port) or conns.setdefault(d.port, smtplib.SMTP("127.0.0.1", d.port, timeout=60))
                    t = time.monotonic()
                    smtp.send_message(mails[i])
                    latencies.append(time.monotonic() - t)
            finally:
                for smtp in conns.values():
                    smtp.quit()

        start = time.monotonic()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(worker, range(concurrency)))
        accepted = time.monotonic() - start
        while monitor.counts().get("pending", 0):
            if time.monotonic() - start > 600:
                raise RuntimeError("not processed within 600 s")
            time.sleep(0.05)
        processed = time.monotonic() - start
        per_process = [{k: round(v - c[k], 1) for k, v in _tree_cpu(d.pid).items() if k != "other" or v - c[k] > 0}
                       for d, c in zip(daemons, cpu0, strict=True)]
        cpu = [round(sum(p.values()), 1) for p in per_process]
        counts = monitor.counts()
        latencies.sort()
        return {"instances": n_instances, "database": "PostgreSQL" if db_url else "SQLite", "messages": messages,
                "accepted_per_s": round(messages / accepted, 1), "processed_per_s": round(messages / processed, 1),
                "accept_p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1),
                "cpu_seconds_per_instance": cpu, "cpu_seconds_per_process": per_process,
                "processed_per_cpu_second": round(messages / max(sum(cpu), 0.01), 1),
                "failed": counts.get("failed", 0), "tickets": monitor.query("SELECT count(*) FROM tickets")[0][0]}
    finally:
        for d in daemons:
            d.stop()
        sink.stop()


def cluster_phase(pg: str, instances: int, messages: int, concurrency: int, new_schema) -> list[dict]:
    """One SQLite single-instance run, then 1..``instances`` instances on PostgreSQL.
    ``new_schema(directory)`` returns a URL on a fresh schema."""
    tmp = Path(tempfile.mkdtemp(prefix="maildesk-cluster."))
    rows = [_one_run(1, None, messages, concurrency, tmp / "sqlite")]
    for n in range(1, instances + 1):
        rows.append(_one_run(n, new_schema(tmp / f"pg{n}"), messages, concurrency, tmp / f"pg{n}"))
    return rows


def table(rows: list[dict]) -> str:
    head = (f"{'database':<11} {'inst':>4} {'accepted/s':>10} {'processed/s':>11} {'accept p99':>10} {'per CPU-s':>9}"
            "  CPU s per instance (daemon/process/deliver)")
    return "\n".join([head] + [f"{r['database']:<11} {r['instances']:>4} {r['accepted_per_s']:>10} {r['processed_per_s']:>11} "
                               f"{r['accept_p99_ms']:>8}ms {r['processed_per_cpu_second']:>9}  "
                               + "  ".join("/".join(str(p[k]) for k in ("daemon", "process", "deliver"))
                                           for p in r["cpu_seconds_per_process"])
                               for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", required=True, metavar="URL")
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from bench.run import Databases

    dbs = Databases(args.pg)
    try:
        rows = cluster_phase(args.pg, args.instances, args.messages, args.concurrency, dbs.url)
    finally:
        dbs.drop()
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
