"""Connection abuse against the real daemon with the shipped [smtp] limits (issue 14, item 1).

    python bench/abuse.py                  # about 50 s, loopback only
    python bench/abuse.py --slots 2000 --seconds 30 --json

Two phases against one ``maildesk run`` (started like bench/run.py does, shipped defaults):

* one client: 127.0.0.1 keeps ``--slots`` connection attempts going (ten times the
  per-client cap by default); every connection that gets its ``220`` is held and trickles
  a byte a second, every ``421`` is closed and tried again after ``--retry`` seconds;
* many clients: 127.0.0.10 and up, each up to the per-client cap, together more than
  ``max_connections``.

Meanwhile a normal sender on 127.0.0.2 sends one message a second through smtplib. The
script prints the connections held against the caps, what the normal sender got and how
fast, and the RSS of each daemon process (main and worker children, from /proc/PID/status:
before, sampled peak, VmHWM, and a few seconds after the abuse ended). Every phase has a
deadline, so the whole run stops by itself in well under two minutes.

Then the fan-out phase (issue 14, item 4; ``--phases fanout`` runs it alone, in about 20 s):
``--flood`` mails (100) from one sender, each a new ticket, with the shipped agents and
rules of config/: how many agent notifications, held notifications and digests (after one
run of the ``notify_digest`` job) and acknowledgements they cost; and one mail whose ``To:``
holds ``--forged`` (20,000) forged reply-token addresses: how many security events it records.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import smtplib
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import DaemonProcess, SinkProcess
from maildesk.config.load import MailConfig, SmtpConfig, WorkflowConfig

__all__ = ["main"]

NORMAL = "127.0.0.2"
LIMITS = SmtpConfig()  # bench/servers.py writes a config with the shipped [smtp] limits


def _log(text: str) -> None:
    print(f"[abuse {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- the daemon's processes ----------------------------------------------------------------
def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return pids


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in bytes (empty once the process is gone)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def name_of(pid: int, main: int) -> str:
    if pid == main:
        return "main (listener)"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "resource_tracker" in cmd:
        return "resource tracker"
    return "worker child"


class Sampler(threading.Thread):
    """Peak RSS per process, sampled every quarter second."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids, self.peak = pids, dict.fromkeys(pids, 0)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], memory(pid).get("VmRSS", 0))


# -- the normal sender -----------------------------------------------------------------------
class NormalSender(threading.Thread):
    """One message a second from 127.0.0.2; records each outcome and its latency."""

    def __init__(self, port: int, phase: str):
        super().__init__(daemon=True)
        self.port, self.phase = port, phase
        self.results: list[tuple[str, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            msg = EmailMessage()
            msg["From"], msg["To"] = "normal@customer.test", "support@example.test"
            msg["Subject"] = f"normal sender during {self.phase} #{i}"
            msg.set_content("A customer writing while someone else abuses the listener.\n")
            started = time.monotonic()
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=15, source_address=(NORMAL, 0)) as smtp:
                    smtp.send_message(msg)
                outcome = "250"
            except smtplib.SMTPResponseException as exc:
                outcome = str(exc.smtp_code)
            except (OSError, smtplib.SMTPException) as exc:
                outcome = type(exc).__name__
            self.results.append((outcome, time.monotonic() - started))
            i += 1
            self.stop.wait(1.0)

    def summary(self) -> dict:
        ok = sorted(t for o, t in self.results if o == "250")
        outcomes: dict[str, int] = {}
        for o, _ in self.results:
            outcomes[o] = outcomes.get(o, 0) + 1
        return {"sent": len(self.results), "outcomes": outcomes,
                "accept_latency_ms": {"p50": round(statistics.median(ok) * 1000, 1) if ok else None,
                                      "max": round(ok[-1] * 1000, 1) if ok else None}}


# -- the abusers -------------------------------------------------------------------------------
class Abuse:
    """Connection slots from some source addresses: hold what gets a 220 (trickling), retry what gets 421."""

    def __init__(self, port: int, sources: list[str], slots_per_source: int, retry: float, deadline: float):
        self.port, self.sources, self.slots, self.retry, self.deadline = port, sources, slots_per_source, retry, deadline
        self.held = self.peak_held = self.refused = self.other = self.dropped = 0
        self.reasons: dict[str, int] = {}

    async def slot(self, source: str) -> None:
        while time.monotonic() < self.deadline:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port, local_addr=(source, 0)), 5)
            except (OSError, TimeoutError):
                self.other += 1
                await asyncio.sleep(self.retry)
                continue
            try:
                first = await asyncio.wait_for(reader.readline(), 5)
            except (OSError, TimeoutError):
                first = b""
            if first.startswith(b"220"):
                await self.hold(reader, writer)
            else:
                if first.startswith(b"421"):
                    self.refused += 1
                    why = first.decode(errors="replace").strip().split(" ", 3)[-1]  # after "421 4.7.0 host"
                    self.reasons[why] = self.reasons.get(why, 0) + 1
                else:
                    self.other += 1
                writer.close()
                await asyncio.sleep(self.retry)

    async def hold(self, reader, writer) -> None:
        self.held += 1
        self.peak_held = max(self.peak_held, self.held)
        payload, i = b"NOOP\r\n", 0
        try:
            while time.monotonic() < self.deadline:
                writer.write(payload[i % len(payload):][:1])  # one byte a second: a command never completes
                i += 1
                await writer.drain()
                await asyncio.sleep(1.0)
                if reader.at_eof():
                    self.dropped += 1
                    break
        except OSError:
            self.dropped += 1
        finally:
            self.held -= 1
            writer.close()

    async def run(self) -> None:
        await asyncio.gather(*(self.slot(s) for s in self.sources for _ in range(self.slots)))

    def summary(self) -> dict:
        return {"sources": f"{self.sources[0]}" + (f" .. {self.sources[-1]}" if len(self.sources) > 1 else ""),
                "attempting_at_once": self.slots * len(self.sources), "held_at_once_peak": self.peak_held,
                "refused_421": self.refused, "refusal_reasons": self.reasons,
                "dropped_by_server": self.dropped, "other": self.other}


def abuse_phase(daemon: DaemonProcess, name: str, sources: list[str], slots: int, seconds: float, retry: float) -> dict:
    _log(f"{name}: {slots * len(sources)} connection attempts at once from {len(sources)} address(es) for {seconds:.0f} s")
    sender = NormalSender(daemon.port, name)
    abuse = Abuse(daemon.port, sources, slots, retry, time.monotonic() + seconds)
    sender.start()
    try:
        asyncio.run(asyncio.wait_for(abuse.run(), seconds + 15))
    finally:
        sender.stop.set()
        sender.join(20)
    return {**abuse.summary(), "normal_sender": sender.summary()}


# -- fan-out ---------------------------------------------------------------------------------
def _json(daemon: DaemonProcess, *args: str):
    return json.loads(daemon.cli(*args, "--json").stdout)


def _settle(daemon: DaemonProcess, timeout: float = 120.0) -> None:
    """Until every inbox row is processed, every notice rendered and every outgoing mail delivered (SQLite, read-only)."""
    path = daemon.db_url.removeprefix("sqlite:///")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
            busy = db.execute("select (select count(*) from inbox where status = 'pending') + (select count(*) from notices "
                              "where done_at is null) + (select count(*) from outbox where status in ('queued', 'sending'))"
                              ).fetchone()[0]
        if not busy:
            return
        time.sleep(0.2)
    raise RuntimeError("the daemon did not settle")


def fanout_phase(daemon: DaemonProcess, flood: int, forged: int) -> dict:
    started = time.monotonic()
    _log(f"fan-out: {flood} mails from one sender, then one mail with {forged:,} forged reply-token addresses in To:")
    _settle(daemon)
    first_out = max((r["id"] for r in _json(daemon, "outbox", "list", "--limit", "1")), default=0)
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=60) as smtp:
        for i in range(flood):
            msg = EmailMessage()
            msg["From"], msg["To"] = "Fred Flood <fred@flood.test>", "support@example.test"
            msg["Subject"] = f"flood {i}: the printer is still broken"
            msg.set_content("One more mail from the same sender.\n")
            smtp.send_message(msg)
    _settle(daemon)
    _log(f"fan-out: {flood} mails processed and their mail delivered after {time.monotonic() - started:.1f} s")
    held = _json(daemon, "events", "list", "--kind", "notifications_held", "--limit", "100000")
    digest_run = daemon.cli("jobs", "run", "notify_digest").stdout.decode().strip()
    _settle(daemon)
    _log(f"fan-out: digests delivered after {time.monotonic() - started:.1f} s")
    new = [r for r in _json(daemon, "outbox", "list", "--limit", "1000000") if r["id"] > first_out]
    notes = [r for r in new if r["kind"] == "notification"]

    security_before = len(_json(daemon, "events", "list", "--kind", "security", "--limit", "1000000"))
    to = ",\r\n ".join(f"support+t1-{i:07d}{'a' * 19}@example.test" for i in range(forged))  # email's parser is slow here
    raw = (f"From: mallory@attacker.test\r\nTo: {to}\r\nSubject: forged tokens\r\nMessage-ID: <forged-{time.time()}@attacker.test>\r\n"
           "\r\nEach To address is a reply token that does not verify.\r\n").encode()
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=60) as smtp:
        smtp.sendmail("mallory@attacker.test", ["support@example.test"], raw)
    _settle(daemon)
    _log(f"fan-out: the forged-token mail processed after {time.monotonic() - started:.1f} s in all")
    security = len(_json(daemon, "events", "list", "--kind", "security", "--limit", "1000000")) - security_before
    outcome = _json(daemon, "inbox", "list", "--limit", "1")[0]["outcome"]
    return {"flood": flood, "notify_limit": WorkflowConfig().notify_limit, "notify_window": WorkflowConfig().notify_window,
            "notifications": len(notes), "agents_notified": len({a for r in notes for a in r["to"]}),
            "held_mails": len({e["ticket"] for e in held}), "digests": sum(r["kind"] == "digest" for r in new),
            "digest_job": digest_run, "acknowledgements": sum(r["kind"] == "ack" for r in new),
            "forged_addresses": forged, "security_events": security,
            "max_security_events": MailConfig.__dataclass_fields__["max_security_events"].default,
            "forged_mail_outcome": outcome[-200:]}


# -- the run -----------------------------------------------------------------------------------
def run(args) -> dict:
    started = time.monotonic()
    sink = SinkProcess()
    tmp = Path(tempfile.mkdtemp(prefix="maildesk-abuse-"))
    daemon = DaemonProcess(tmp / "daemon", sink.port).start()
    try:
        if "connections" not in args.phases:
            return {"fanout": fanout_phase(daemon, args.flood, args.forged), "seconds": round(time.monotonic() - started, 1)}
        warm = NormalSender(daemon.port, "warm-up")
        warm.start()
        time.sleep(2.5)
        warm.stop.set()
        warm.join(20)
        sink.wait_count(len(warm.results), 30)  # the acknowledgements: every process has done its work once
        time.sleep(1.0)
        pids = process_tree(daemon.pid)
        before = {pid: memory(pid).get("VmRSS", 0) for pid in pids}
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM from here (Linux >= 4.0)
        sampler = Sampler(pids)
        sampler.start()
        phases = {
            "one_client": abuse_phase(daemon, "one client", ["127.0.0.1"], args.slots, args.seconds, args.retry),
            "many_clients": abuse_phase(daemon, "many clients", [f"127.0.0.{10 + i}" for i in range(args.clients)],
                                        LIMITS.max_connections_per_client + 10, args.seconds / 2, args.retry),
        }
        _log(f"abuse over; waiting {args.settle:.0f} s before the post-abuse RSS")
        time.sleep(args.settle)
        sampler.stop.set()
        sampler.join(5)
        processes = []
        for pid in pids:
            now = memory(pid)
            processes.append({"pid": pid, "process": name_of(pid, daemon.pid), "rss_before": before[pid],
                              "rss_peak_sampled": sampler.peak[pid], "vm_hwm": now.get("VmHWM", 0),
                              "rss_after": now.get("VmRSS", 0)})
        log_text = daemon.log.read_text(errors="replace")
        fanout = fanout_phase(daemon, args.flood, args.forged) if "fanout" in args.phases else None
        return {"limits": {k: getattr(LIMITS, k) for k in ("max_connections", "max_connections_per_client", "idle_timeout",
                                                           "session_timeout", "data_timeout", "min_data_rate")},
                "phases": phases, "processes": processes,
                "log_lines": {"refusal_summaries": log_text.count("refused "), "tracebacks": log_text.count("Traceback")},
                "fanout": fanout, "seconds": round(time.monotonic() - started, 1)}
    finally:
        daemon.stop()
        sink.stop()


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def report_fanout(f: dict) -> list[str]:
    per_agent = f["notifications"] / f["agents_notified"] if f["agents_notified"] else 0
    return [f"  fan-out: {f['flood']} mails from one sender (notify_limit = {f['notify_limit']} per {f['notify_window']} s): "
            f"{f['notifications']} agent notifications to {f['agents_notified']} agent(s) ({per_agent:.1f} each), "
            f"{f['held_mails']} mails held, {f['digests']} digest(s) after one notify_digest run, "
            f"{f['acknowledgements']} acknowledgement(s)",
            f"    one mail with {f['forged_addresses']:,} forged reply-token addresses in To: {f['security_events']} security "
            f"event(s) (max_security_events = {f['max_security_events']}, plus one summary)",
            f"    its inbox outcome: ...{f['forged_mail_outcome'][-140:]}"]


def report(r: dict) -> str:
    if "limits" not in r:
        return "\n".join([f"maildesk fan-out ({r['seconds']} s)", *report_fanout(r["fanout"])])
    lim = r["limits"]
    lines = [f"maildesk connection abuse ({r['seconds']} s): max_connections = {lim['max_connections']}, "
             f"max_connections_per_client = {lim['max_connections_per_client']}"]
    for name, cap in (("one_client", lim["max_connections_per_client"]), ("many_clients", lim["max_connections"])):
        p = r["phases"][name]
        n = p["normal_sender"]
        lat = n["accept_latency_ms"]
        lines += [f"  {name.replace('_', ' ')} ({p['sources']}): {p['attempting_at_once']} attempting, held at once "
                  f"{p['held_at_once_peak']} vs cap {cap}, {p['refused_421']:,} refused with 421 4.7.0, "
                  f"{p['dropped_by_server']} dropped by the server, {p['other']} other",
                  *(f"    {n:>7,} x {why!r}" for why, n in p["refusal_reasons"].items()),
                  f"    normal sender 127.0.0.2: {n['sent']} messages, outcomes {n['outcomes']}, "
                  f"accept latency p50 {lat['p50']} ms, max {lat['max']} ms"]
    lines.append("  RSS per daemon process: before / peak sampled / VmHWM / after")
    for p in r["processes"]:
        change = (p["rss_after"] / p["rss_before"] - 1) * 100 if p["rss_before"] else 0.0
        lines.append(f"    {p['pid']:>7} {p['process']:<17} {_mb(p['rss_before']):>9} / {_mb(p['rss_peak_sampled']):>9} / "
                     f"{_mb(p['vm_hwm']):>9} / {_mb(p['rss_after']):>9} ({change:+.0f} %)")
    lines.append(f"  log: {r['log_lines']['refusal_summaries']} refusal summary line(s), {r['log_lines']['tracebacks']} tracebacks")
    if r.get("fanout"):
        lines += report_fanout(r["fanout"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slots", type=int, default=10 * LIMITS.max_connections_per_client,
                    help="connection attempts kept going from 127.0.0.1 (default: ten times the per-client cap)")
    ap.add_argument("--clients", type=int, default=LIMITS.max_connections // LIMITS.max_connections_per_client + 1,
                    help="source addresses in the many-clients phase (default: enough to pass max_connections)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the one-client phase (the other takes half)")
    ap.add_argument("--retry", type=float, default=0.5, help="seconds before a refused slot tries again")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds between the end of the abuse and the post-abuse RSS")
    ap.add_argument("--phases", default="connections,fanout",
                    help="comma-separated: connections, fanout, memory (default: connections,fanout); all: every phase")
    ap.add_argument("--memory-count", type=int, default=200, help="memory phase: mails in the large-mail backlog (default 200)")
    ap.add_argument("--memory-size", type=int, default=25_000_000, help="memory phase: bytes per mail (default 25,000,000)")
    ap.add_argument("--flood", type=int, default=100, help="mails from one sender in the fan-out phase")
    ap.add_argument("--forged", type=int, default=20_000, help="forged reply-token addresses in one To: header")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args(argv)
    if args.seconds > 60:
        ap.error("--seconds: at most 60, so the run stays under two minutes")
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if args.phases == {"all"}:
        args.phases = {"connections", "fanout", "memory"}
    if not args.phases or args.phases - {"connections", "fanout", "memory"}:
        ap.error("--phases: expected some of connections, fanout, memory (or all)")
    out, code = [], 0
    if args.phases - {"memory"}:
        result = run(args)
        out.append(json.dumps(result, indent=2) if args.json else report(result))
    if "memory" in args.phases:  # the 200 x 25 MB backlog, RSS per process and bytes on disk: bench/memory.py
        from bench import memory

        mem_args = argparse.Namespace(count=args.memory_count, size=args.memory_size, connections=1, json=args.json)
        mem = memory.run(mem_args)
        out.append(json.dumps(mem, indent=2) if args.json else memory.report(mem))
        code = 0 if mem["drained"] and all(p["within"] for p in mem["processes"]) else 1
    print("\n".join(out))
    return code


if __name__ == "__main__":
    sys.exit(main())
