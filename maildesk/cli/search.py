"""`maildesk tickets list`: its filters (maildesk.tickets.search) and its CSV export."""

from __future__ import annotations

import csv
import io

from maildesk.cli.report import _when
from maildesk.vocab import PRIORITIES

__all__ = ["CSV_COLUMNS", "add_list_arguments", "list_rows", "to_csv"]

CSV_COLUMNS = ("ref", "number", "status", "priority", "requester", "requester_name", "assignee", "team", "tags", "subject",
               "created_at", "updated_at", "first_response_at", "resolved_at", "message_count")


def _since(text: str):
    from datetime import UTC, date, datetime

    value = _when(text)
    return datetime.combine(value, datetime.min.time(), UTC) if isinstance(value, date) and not isinstance(value, datetime) else value


def _until(text: str):
    from datetime import UTC, date, datetime, timedelta

    value = _when(text)
    if isinstance(value, date) and not isinstance(value, datetime):  # a date counts whole
        return datetime.combine(value + timedelta(days=1), datetime.min.time(), UTC)
    return value


def add_list_arguments(tl, statuses) -> None:
    tl.add_argument("--status", choices=statuses, help="only tickets with this status")
    tl.add_argument("--requester", metavar="ADDRESS|DOMAIN", help="a requester's address, or every requester of a domain (acme.example)")
    tl.add_argument("--assignee", metavar="LOGIN")
    tl.add_argument("--team")
    tl.add_argument("--tag")
    tl.add_argument("--priority", choices=PRIORITIES)
    tl.add_argument("--created-since", type=_since, metavar="DATE")
    tl.add_argument("--created-until", type=_until, metavar="DATE", help="excluded; a bare date counts whole")
    tl.add_argument("--updated-since", type=_since, metavar="DATE")
    tl.add_argument("--updated-until", type=_until, metavar="DATE", help="excluded; a bare date counts whole")
    tl.add_argument("--breached", action="store_true", help="open tickets with an SLA breach recorded")
    tl.add_argument("--search", metavar="TEXT", help="every word in the subject, a message or the requester's name (full-text index)")
    tl.add_argument("--public-only", action="store_true", help="with --search: internal notes do not count")
    tl.add_argument("--format", choices=("text", "json", "csv"), default=None)


def list_rows(session, args, prefix: str) -> list[dict]:
    from maildesk.tickets.search import TicketQuery, search_tickets
    from maildesk.tickets.views import message_counts, ticket_summary

    f = TicketQuery(requester=args.requester, assignee=args.assignee, team=args.team, tag=args.tag, priority=args.priority, status=args.status,
                    created_since=args.created_since, created_until=args.created_until, updated_since=args.updated_since,
                    updated_until=args.updated_until, breached=args.breached, text=args.search, public_only=args.public_only, limit=args.limit)
    tickets = list(session.scalars(search_tickets(session, f)).unique())
    counts = message_counts(session, [t.id for t in tickets])
    return [ticket_summary(t, prefix, counts.get(t.id, 0)) for t in tickets]


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([" ".join(r[c]) if c == "tags" else ("" if r.get(c) is None else r.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()
