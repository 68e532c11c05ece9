"""``maildesk jobs list`` and ``maildesk jobs run [NAME] [--at ISO-8601] [--dry-run | --force]``.

A run as of a time ahead of the clock changes real tickets as if that time had come (a
breach recorded then stays when the ticket is answered in time after all): it needs
``--force``, and ``--dry-run`` shows what it would do without changing anything.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from maildesk.cli.args import aware_time
from maildesk.config.load import Config
from maildesk.errors import EX_USAGE

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub) -> None:
    jobs = sub.add_parser("jobs", help="scheduled jobs (SLA, reminders, auto-close)").add_subparsers(
        dest="jobs_command", required=True)
    jobs.add_parser("list", help="the jobs, their interval, last and next run")
    run = jobs.add_parser("run", help="run due work once (all jobs, or NAME)")
    run.add_argument("name", nargs="?", help="one job; default: all")
    run.add_argument("--at", type=aware_time, help="run as if the clock said this time (ISO 8601 with a time zone, "
                     "e.g. 2026-11-24T09:30:00+01:00); a time ahead of now needs --dry-run or --force")
    how = run.add_mutually_exclusive_group()
    how.add_argument("--dry-run", action="store_true", help="print what the jobs would do and change nothing")
    how.add_argument("--force", action="store_true", help="allow --at ahead of now: real changes, as if that time had come "
                     "(the mail it queues is due now)")


def cmd_jobs(args, config: Config) -> int:
    from sqlalchemy import select

    from maildesk.daemon.build import build_desk, sync_directory
    from maildesk.daemon.jobs import JOBS
    from maildesk.daemon.scheduler import run_jobs
    from maildesk.storage.models import JobRun
    from maildesk.storage.store import existing_store
    from maildesk.tickets.views import table

    if args.jobs_command == "run":  # the arguments first: a usage error opens nothing
        names = [args.name] if args.name else list(JOBS)
        unknown = [n for n in names if n not in JOBS]
        if unknown:
            print(f"maildesk: no job {unknown[0]!r}; jobs: {', '.join(JOBS)}", file=sys.stderr)
            return EX_USAGE
        if args.at is not None and args.at > datetime.now(UTC) and not (args.dry_run or args.force):
            print(f"maildesk: --at {args.at.isoformat()} is ahead of now: the jobs would change real tickets and queue real "
                  "mail as if that time had come; add --dry-run to see what they would do, or --force to do it", file=sys.stderr)
            return EX_USAGE
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
    run = run_jobs(desk, names, args.at, dry_run=args.dry_run, prepare=sync_directory)
    for name, result in run.results:
        print(f"{name}: {result}")
    if run.dry_run:
        for title, lines in (("event(s) it would record", run.events), ("mail(s) it would queue", run.mails)):
            print(f"{len(lines)} {title}{':' if lines else ''}")
            for line in lines:
                print(f"  {line}")
        print("dry run: nothing was changed")
    return 0


COMMANDS = {"jobs": cmd_jobs}
