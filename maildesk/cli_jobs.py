"""``maildesk jobs list`` and ``maildesk jobs run [NAME] [--at ISO-8601]``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from maildesk.config import Config
from maildesk.errors import EX_USAGE

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub) -> None:
    jobs = sub.add_parser("jobs", help="scheduled jobs (SLA, reminders, auto-close)").add_subparsers(
        dest="jobs_command", required=True)
    jobs.add_parser("list", help="the jobs, their interval, last and next run")
    run = jobs.add_parser("run", help="run due work once (all jobs, or NAME)")
    run.add_argument("name", nargs="?", help="one job; default: all")
    run.add_argument("--at", help="run as if the clock said this time (ISO 8601, e.g. 2026-11-24T09:30:00+01:00)")


def cmd_jobs(args, config: Config) -> int:
    from sqlalchemy import select

    from maildesk.daemon import build_desk, sync_directory
    from maildesk.jobs import JOBS
    from maildesk.models import JobRun
    from maildesk.scheduler import run_job
    from maildesk.store import existing_store
    from maildesk.views import table

    desk = build_desk(config, existing_store(config, writes=args.jobs_command != "list"))
    if args.jobs_command == "list":
        with desk.store.read() as session:
            runs = {r.name: r for r in session.scalars(select(JobRun))}
        rows = []
        for name, job in JOBS.items():
            r = runs.get(name)
            rows.append({"name": name, "every": f"{job.interval:g}s", "last_run": r.last_run_at.isoformat()[:19] if r else "never",
                         "next_run": r.next_run_at.isoformat()[:19] if r and r.next_run_at else "at daemon start",
                         "last_result": r.result if r else "", "what": job.help})
        print(table(rows, ["name", "every", "last_run", "next_run", "last_result", "what"], {"last_result": 50, "what": 60}))
        return 0
    at = None
    if args.at:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            print(f"maildesk: --at {args.at!r}: expected an ISO 8601 time like 2026-11-24T09:30:00+01:00", file=sys.stderr)
            return EX_USAGE
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
    names = [args.name] if args.name else list(JOBS)
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        print(f"maildesk: no job {unknown[0]!r}; jobs: {', '.join(JOBS)}", file=sys.stderr)
        return EX_USAGE
    sync_directory(desk)
    for name in names:
        print(f"{name}: {run_job(desk, name, at)}")
    return 0


COMMANDS = {"jobs": cmd_jobs}
