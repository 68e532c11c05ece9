"""Processing alone, in this process: store N corpus messages, then time ``process_pending``.

    python bench/bench_process.py                 # 2,000 messages, figures only
    python bench/bench_process.py -n 5000 --profile out.prof   # also a cProfile dump

No SMTP and no delivery: this isolates the CPU cost of parse, thread, rules, SLA, rendering
and queueing mail, and the database writes (SQLite WAL, synchronous=FULL), per message.
"""

from __future__ import annotations

import argparse
import cProfile
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import build
from bench.servers import write_config

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--profile", metavar="PATH")
    ap.add_argument("--pg", metavar="URL")
    args = ap.parse_args(argv)

    from maildesk.config.load import load_config
    from maildesk.daemon.build import build_desk, sync_directory
    from maildesk.ingest.intake import Intake, RawMail
    from maildesk.process.pipeline import process_pending

    tmp = Path(tempfile.mkdtemp(prefix="maildesk-bench-process."))
    try:
        cfg_path = write_config(tmp, port=2, smarthost_port=9, db_url=args.pg)
        config = load_config(cfg_path)
        desk = build_desk(config)
        desk.store.upgrade()
        sync_directory(desk)
        items = [it for it in build(args.n * 2, seed=7) if not it.dynamic][: args.n]
        intake = Intake(desk.store, desk.clock)
        for k in range(0, len(items), 500):
            intake.store_batch([RawMail(it.raw(), it.mail_from, (it.rcpt,), "smtp") for it in items[k:k + 500]])
        prof = cProfile.Profile() if args.profile else None
        t0, cpu0 = time.perf_counter(), time.process_time()
        done = 0
        if prof:
            prof.enable()
        while True:
            res = process_pending(desk, args.batch)
            if not res:
                break
            done += len(res)
        if prof:
            prof.disable()
            prof.dump_stats(args.profile)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        with desk.store.read() as s:
            from sqlalchemy import func, select

            from maildesk.storage.models import InboxMail, Outbox

            outbox = s.scalar(select(func.count()).select_from(Outbox))
            failed = s.scalar(select(func.count()).select_from(InboxMail).where(InboxMail.status == "failed"))
        print(f"processed {done} messages in {wall:.2f} s: {done / wall:.1f} msg/s, "
              f"{cpu / done * 1000:.2f} ms CPU per message; {outbox} outgoing mails queued; {failed} failed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
