"""`maildesk report`: the period and team from the command line, the figures from
:mod:`maildesk.reporting`, written as text, JSON, CSV or one self-contained HTML file."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from maildesk.cli.args import positive
from maildesk.errors import UsageError

__all__ = ["add_report_parser", "cmd_report", "period"]

FORMATS = ("text", "json", "csv", "html")


def _when(text: str) -> datetime | date:
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-30 or a time like 2026-11-30T12:00+01:00, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def add_report_parser(sub) -> None:
    rep = sub.add_parser("report", help="volume, response/resolution times, SLA, backlog, reopens, satisfaction, agents (docs/reports.md)")
    rep.add_argument("--since", type=_when, metavar="DATE", help="start of the period (a date is its 00:00 UTC); default: --days before --until")
    rep.add_argument("--until", type=_when, metavar="DATE", help="end of the period, excluded (a date counts whole); default: now")
    rep.add_argument("--days", type=positive(float), default=7, help="the period's length when --since is not given (default 7)")
    rep.add_argument("--team", metavar="T", help="only tickets of this team")
    rep.add_argument("--repeat-days", type=positive(float), default=7, help="a repeat contact is a requester's new ticket within N days (default 7)")
    rep.add_argument("--format", choices=FORMATS, default=None, help="text (default), json, csv or html")
    rep.add_argument("--json", action="store_true", help="same as --format json")
    rep.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")


def period(since, until, days: float, now: datetime) -> tuple[datetime, datetime]:
    if isinstance(until, date) and not isinstance(until, datetime):
        until = datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC)
    until = until or now
    if isinstance(since, date) and not isinstance(since, datetime):
        since = datetime.combine(since, datetime.min.time(), UTC)
    since = since or until - timedelta(days=days)
    if since >= until:
        raise UsageError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    return since, until


def load_sla_of(config):
    from maildesk.sla.deadlines import load_sla

    path = Path(config.config_dir) / "sla.toml"
    return load_sla(path) if path.exists() else None


def cmd_report(args, config) -> int:
    from maildesk.cli.common import open_db
    from maildesk.daemon.build import utcnow
    from maildesk.reporting import build_report, load_dataset
    from maildesk.reporting.render import to_csv, to_json, to_text

    since, until = period(args.since, args.until, args.days, utcnow())
    fmt = args.format or ("json" if args.json else "text")
    store = open_db(config, args)
    with store.read() as session:
        rows = load_dataset(session, until, args.team, since, args.repeat_days)
        data = build_report(rows, load_sla_of(config), since, until, team=args.team, repeat_days=args.repeat_days)
    if fmt == "html":
        from maildesk.reporting.html import render_html

        out = render_html(data)
    else:
        out = {"json": to_json, "csv": to_csv, "text": lambda d: to_text(d) + "\n"}[fmt](data)
    if args.output:
        Path(args.output).write_text(out, encoding="utf-8")
        print(f"report written to {args.output} ({fmt}, {len(out.encode()):,} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(out)
    return 0
