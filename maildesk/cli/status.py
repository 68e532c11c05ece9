"""``maildesk status [--json]``: this instance's liveness and the backlog (:mod:`maildesk.daemon.health`).

Exit status 0 when the listener answers (or is disabled), 1 when it does not: usable as a
health check.
"""

from __future__ import annotations

import argparse
import json
import sys

from maildesk.config.load import Config

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="liveness of this instance and the backlog (inbox, outbox, notices, jobs)")
    p.add_argument("--json", action="store_true")


def _human(data: dict) -> str:
    up = data["listener"]["up"]
    lines = [f"listener {data['listener']['address']}: {'disabled' if up is None else 'up' if up else 'DOWN'}",
             f"inbox: {data['inbox_pending']} pending (oldest {_secs(data['inbox_oldest_pending_age_seconds'])}), "
             f"{data['inbox_failed']} failed",
             f"outbox: {data['outbox_queued']} queued, {data['outbox_sending']} sending "
             f"(oldest {_secs(data['outbox_oldest_queued_age_seconds'])}), {data['outbox_failed']} failed",
             f"notices: {data['notices_pending']} pending, {data['notices_failed']} failed"]
    lines += [f"job {j['name']}: last run {j['last_run_at'] or 'never'}: {j['result']}" for j in data["jobs"]] or ["jobs: none ran yet"]
    return "\n".join(lines)


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"


def cmd_status(args, config: Config) -> int:
    from maildesk.cli.common import open_db
    from maildesk.daemon.build import utcnow
    from maildesk.daemon.health import status

    data = status(config, open_db(config, args), utcnow())
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(_human(data))
    return 1 if data["listener"]["up"] is False else 0


COMMANDS = {"status": cmd_status}
