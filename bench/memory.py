"""Peak memory of every maildesk process while a backlog of large mail drains (issue 14, item 2).

    python bench/memory.py                     # 200 x 25 MB, about 2-3 minutes, loopback only
    python bench/memory.py --count 40 --json

Starts the daemon the way bench/run.py does (shipped defaults, ``[smtp] max_message_size``
raised so 25 MB fits with its headers), sends 20 small mails and waits until they are
processed and their mail delivered: the steady state of each process. Then ``--count``
mails of ``--size`` bytes (alternately one huge text/plain body and one big attachment)
are sent over ``--connections`` SMTP sessions (default 1: the listener holds each mail
while it receives it, so N parallel senders cost it N mails); the backlog builds while
they arrive and drains. RSS is
sampled every 0.1 s per process (from /proc, helpers of bench/abuse.py) until every mail
is processed and every outgoing mail sent; each process's peak is compared with the bound
``steady + 2 x largest message``. It also prints the bytes on disk per inbound mail.
"""

from __future__ import annotations

import argparse
import json
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import servers
from bench.abuse import Sampler, memory, name_of, process_tree
from bench.corpus import big_message
from bench.phases import disk_per_message
from bench.servers import DaemonProcess, DbMonitor, SinkProcess

__all__ = ["main"]

DEADLINE = 170.0  # seconds for the backlog: the whole run stays under three minutes


def _log(text: str) -> None:
    print(f"[memory {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def text_mail(i: int, size: int) -> bytes:
    line = b"A line of a huge pasted log file, the kind a customer attaches inline, %08d.\r\n"
    head = (f"From: Log Sender {i} <logs{i}@customer.test>\r\nTo: support@example.test\r\nSubject: the whole log ({i})\r\n"
            f"Message-ID: <log.{i}@customer.test>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n").encode()
    n = (size - len(head)) // len(line % 0)
    return head + b"".join(line % k for k in range(n))


def attachment_mail(i: int, size: int) -> bytes:
    data = big_message(size, seed=i).data
    return data.replace(b"<big.25mb@bigsender.example.org>", f"<big.{i}@bigsender.example.org>".encode()) \
               .replace(b"big@bigsender.example.org", f"big{i}@bigsender.example.org".encode())


def send_all(port: int, mails: list[bytes], connections: int = 4) -> list[str]:
    errors: list[str] = []
    todo = list(enumerate(mails))
    lock = threading.Lock()

    def worker() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            while True:
                with lock:
                    if not todo:
                        return
                    i, raw = todo.pop(0)
                try:
                    sender = f"logs{i}@customer.test" if i % 2 == 0 else f"big{i}@bigsender.example.org"
                    smtp.sendmail(sender, ["support@example.test"], raw)
                except smtplib.SMTPException as exc:
                    errors.append(f"{i}: {exc}")

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def wait_drained(monitor: DbMonitor, total: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        counts = monitor.counts()
        if sum(counts.values()) >= total and not counts.get("pending") and not monitor.unsent():
            return True
        time.sleep(0.25)
    return False


def run(args) -> dict:
    started = time.monotonic()
    servers.MAX_SIZE = args.size + 1_000_000  # [smtp] max_message_size: 25 MB and its headers fit
    sink = SinkProcess()
    tmp = Path(tempfile.mkdtemp(prefix="maildesk-memory-"))
    daemon = DaemonProcess(tmp / "daemon", sink.port).start()
    monitor = DbMonitor(daemon.db_url)
    try:
        warm = [text_mail(10_000 + i, 3_000) for i in range(20)]
        send_all(daemon.port, warm, 2)
        wait_drained(monitor, len(warm), time.monotonic() + 60)
        time.sleep(2.0)
        pids = process_tree(daemon.pid)
        steady = {pid: memory(pid).get("VmRSS", 0) for pid in pids}
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM from here on
        sampler = Sampler(pids)
        sampler.start()
        mails = [text_mail(i, args.size) if i % 2 == 0 else attachment_mail(i, args.size) for i in range(args.count)]
        largest = max(len(m) for m in mails)
        _log(f"sending {len(mails)} mails of {largest / 1e6:.1f} MB at most")
        t0 = time.monotonic()
        errors = send_all(daemon.port, mails, args.connections)
        accepted_s = time.monotonic() - t0
        del mails
        most_pending = max(monitor.counts().get("pending", 0), 0)
        drained = wait_drained(monitor, len(warm) + args.count, t0 + DEADLINE)
        drained_s = time.monotonic() - t0
        sampler.stop.set()
        sampler.join(5)
        processes = []
        for pid in pids:
            now = memory(pid)
            peak = max(sampler.peak[pid], now.get("VmHWM", 0))
            bound = steady[pid] + 2 * largest
            processes.append({"pid": pid, "process": name_of(pid, daemon.pid), "steady": steady[pid], "peak": peak,
                              "bound": bound, "within": peak <= bound})
        counts = monitor.counts()
        disk = disk_per_message(monitor, daemon.db_url)
        return {"count": args.count, "largest": largest, "accepted": args.count - len(errors), "errors": errors[:3],
                "accept_seconds": round(accepted_s, 1), "drained": drained, "drain_seconds": round(drained_s, 1),
                "pending_when_sent": most_pending, "inbox": counts, "processes": processes, "disk_per_message": disk,
                "mails_at_sink": sink.received, "seconds": round(time.monotonic() - started, 1)}
    finally:
        monitor.close()
        daemon.stop()
        sink.stop()


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def report(r: dict) -> str:
    lines = [f"maildesk memory under a backlog ({r['seconds']} s): {r['count']} mails, the largest {_mb(r['largest'])} "
             f"(half a text/plain body, half an attachment)",
             f"  accepted {r['accepted']} in {r['accept_seconds']} s ({r['pending_when_sent']} still pending then); "
             f"all processed and sent: {r['drained']} after {r['drain_seconds']} s; inbox {r['inbox']}; "
             f"{r['mails_at_sink']} mails at the sink",
             "  RSS per process: steady / peak (sampled and VmHWM) / bound = steady + 2 x largest"]
    for p in r["processes"]:
        lines.append(f"    {p['pid']:>7} {p['process']:<17} {_mb(p['steady']):>9} / {_mb(p['peak']):>9} / {_mb(p['bound']):>9}"
                     f"  {'within' if p['within'] else 'OVER'} (peak - steady = {(p['peak'] - p['steady']) / r['largest']:.2f} x largest)")
    d = r["disk_per_message"]
    lines.append(f"  on disk per inbound mail: raw {_mb(d['raw'])}, derived {_mb(d['derived'])}, outgoing {_mb(d['outgoing'])}, "
                 f"database file {_mb(d['file'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200, help="mails in the backlog (default 200)")
    ap.add_argument("--size", type=int, default=25_000_000, help="bytes per mail (default 25,000,000)")
    ap.add_argument("--connections", type=int, default=1, help="SMTP sessions sending at once (default 1)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0 if result["drained"] and all(p["within"] for p in result["processes"]) else 1


if __name__ == "__main__":
    sys.exit(main())
