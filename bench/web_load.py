"""Does the web view slow intake? Accept latency at a fixed offered load, without and with
web clients reloading the team queue page.

    python bench/web_load.py                       # 100 msg/s for 30 s, then again with 20 web clients
    python bench/web_load.py --rate 100 --seconds 30 --clients 20 --seed 300

The real daemon (SQLite, the checkout's config/, the smarthost a sink process) with
``[web] listen`` on. ``--seed`` mails are sent and processed first so the queue page has
tickets to list. Then two phases of ``--seconds`` each at ``--rate`` messages per second
(bench.loadgen.open_loop, 16 connections): the first alone, the second while ``--clients``
threads in a separate process GET /queue/team as an admin (a signed session cookie minted
with the config's secret) as fast as the server answers. Accept latency = end of DATA to
the 250. Printed: p50/p99/max accept latency for both phases, and the web requests served
(count, per second, p50/p99 latency, errors).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import build
from bench.loadgen import closed_loop, open_loop, percentile
from bench.servers import DaemonProcess, SinkProcess, free_port, wait_port

SECRET = "bench-secret-not-for-production-0123456789"  # bench.servers.write_config's


def _web_clients(url: str, cookie: str, clients: int, seconds: float, out, nice: int = 0) -> None:
    import os

    import httpx

    if nice:  # the clients stand in for browsers on other machines: they should not take the listener's CPU here
        os.nice(nice)
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def loop():
        with httpx.Client(cookies={"maildesk_session": cookie}, timeout=30) as c:
            while time.monotonic() < stop:
                t = time.monotonic()
                try:
                    r = c.get(url)
                    ok = r.status_code == 200 and "MD-" in r.text
                except httpx.HTTPError:
                    ok = False
                with lock:
                    latencies.append(time.monotonic() - t) if ok else errors.__setitem__(0, errors[0] + 1)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out.put({"requests": len(latencies), "errors": errors[0], "p50_ms": 1000 * percentile(latencies, 50),
             "p99_ms": 1000 * percentile(latencies, 99), "per_second": len(latencies) / seconds})


def _accept(res) -> dict:
    lat = [s.latency for s in res.accepted]
    return {"accepted": len(lat), "refused": len(res.sent) - len(lat), "p50_ms": 1000 * percentile(lat, 50),
            "p99_ms": 1000 * percentile(lat, 99), "max_ms": 1000 * max(lat) if lat else float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seed", type=int, default=300, help="mails sent and processed before the measured phases")
    ap.add_argument("--clients-nice", type=int, default=0, help="run the web clients at this nice level (they share the machine's cores)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from maildesk.web.auth import Sessions

    n = int(args.rate * args.seconds)
    items = build(args.seed + 2 * n, seed=7)
    seed, phase_a, phase_b = items[: args.seed], items[args.seed: args.seed + n], items[args.seed + n:]
    with tempfile.TemporaryDirectory(prefix="maildesk-webbench-") as tmp:
        sink = SinkProcess()
        daemon = DaemonProcess(Path(tmp) / "d", sink.port)
        web_port = free_port()
        with open(daemon.config, "a") as f:
            f.write(f'\n[web]\nlisten = "127.0.0.1:{web_port}"\n')
        daemon.start()
        try:
            wait_port(web_port, daemon.proc)
            asyncio.run(closed_loop(seed, daemon.port, concurrency=8))
            time.sleep(2)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and json.loads(daemon.cli("inbox", "list", "--status", "pending", "--json").stdout):
                time.sleep(1)
            alone = asyncio.run(open_loop(phase_a, daemon.port, args.rate))
            cookie, _ = Sessions(SECRET, 3600).issue("alice")  # an admin in config/agents.toml: sees every ticket
            out = multiprocessing.get_context("spawn").Queue()
            web = multiprocessing.get_context("spawn").Process(
                target=_web_clients, args=(f"http://127.0.0.1:{web_port}/queue/team", cookie, args.clients, args.seconds + 2, out, args.clients_nice))
            web.start()
            time.sleep(1)  # the clients are busy before the first mail of the phase
            loaded = asyncio.run(open_loop(phase_b, daemon.port, args.rate))
            web_stats = out.get(timeout=120)
            web.join()
        finally:
            daemon.stop()
            sink.stop()
    result = {"rate": args.rate, "seconds": args.seconds, "clients": args.clients, "accept_alone": _accept(alone),
              "accept_with_web": _accept(loaded), "web": web_stats}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        a, b, w = result["accept_alone"], result["accept_with_web"], result["web"]
        print(f"offered {args.rate:g} msg/s for {args.seconds:g} s; web: {args.clients} clients reloading /queue/team")
        for label, r in (("accept alone:   ", a), ("accept with web:", b)):
            print(f"{label} {r['accepted']} accepted, {r['refused']} refused, p50 {r['p50_ms']:.1f} ms, "
                  f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms")
        print(f"web: {w['requests']} pages ({w['per_second']:.1f}/s), p50 {w['p50_ms']:.0f} ms, p99 {w['p99_ms']:.0f} ms, {w['errors']} errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
