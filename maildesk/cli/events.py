"""``maildesk events list``: the audit log across all tickets, e.g. every security event
(forged reply tokens, unauthenticated mail claiming to be from an agent) without opening
each ticket."""

from __future__ import annotations

import argparse
import json
import sys

from maildesk.cli.args import aware_time, positive
from maildesk.config.load import Config

__all__ = ["COMMANDS", "add_commands"]

COLUMNS = ["at", "ticket", "actor", "kind", "detail"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    events = sub.add_parser("events", help="the audit log across all tickets").add_subparsers(dest="events_command", required=True)
    ev = events.add_parser("list", help="events, newest first")
    ev.add_argument("--kind", help="only events of this kind, e.g. security, status, assigned")
    ev.add_argument("--since", type=aware_time, help="only events at or after this time (ISO 8601 with a time zone)")
    ev.add_argument("--ticket", metavar="REF", help="only events of this ticket (MD-12 or 12)")
    ev.add_argument("--limit", type=positive(), default=100, help="at most this many (default 100)")
    ev.add_argument("--json", action="store_true")


def cmd_events(args, config: Config) -> int:
    from sqlalchemy import select

    from maildesk.errors import NotFound
    from maildesk.parse.subjects import format_ref
    from maildesk.storage.models import Event
    from maildesk.storage.store import existing_store
    from maildesk.tickets.views import find_ticket_by_ref, table

    prefix = config.mail.ticket_prefix
    store = existing_store(config, writes=False)
    with store.read() as session:
        q = select(Event).order_by(Event.id.desc()).limit(args.limit)
        if args.ticket:
            ticket = find_ticket_by_ref(session, args.ticket, prefix)
            if ticket is None:
                raise NotFound(f"no ticket {args.ticket}; `maildesk tickets list` shows the tickets there are")
            q = q.where(Event.ticket_id == ticket.id)
        if args.kind:
            q = q.where(Event.kind == args.kind)
        if args.since:
            q = q.where(Event.at >= args.since)
        rows = [{"id": e.id, "at": e.at.isoformat(), "ticket": format_ref(prefix, e.ticket_id) if e.ticket_id else None,
                 "actor": e.actor, "kind": e.kind, "detail": e.detail or {}} for e in session.scalars(q)]
        if not rows and args.kind and session.scalar(select(Event.id).where(Event.kind == args.kind).limit(1)) is None:
            kinds = sorted(session.scalars(select(Event.kind).distinct()))
            print(f"maildesk: no {args.kind!r} event has been recorded yet; kinds recorded so far: {', '.join(kinds) or 'none'}",
                  file=sys.stderr)
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        shown = [{**r, "at": r["at"][:19], "detail": _detail(r["detail"])} for r in rows]
        print(table(shown, COLUMNS, {"detail": 120, "actor": 30}))
    return 0


def _detail(detail: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in detail.items() if v not in (None, "", [], {}))


COMMANDS = {"events": cmd_events}
