"""``maildesk tickets``: list, show (messages, events, SLA) and attachments of tickets."""

from __future__ import annotations

import sys

from maildesk.cli.common import emit, open_db
from maildesk.config.load import Config
from maildesk.errors import NotFound

__all__ = ["cmd_tickets"]


def cmd_tickets(args, config: Config) -> int:

    from maildesk.tickets.views import find_ticket_by_ref, table, ticket_detail

    if args.tickets_command == "attachment":
        from maildesk.cli.people import cmd_attachment

        return cmd_attachment(args, config)
    store = open_db(config, args)
    prefix = config.mail.ticket_prefix
    with store.read() as session:
        if args.tickets_command == "list":
            from maildesk.cli.search import list_rows, to_csv

            rows = list_rows(session, args, prefix)
            if args.format == "csv":
                sys.stdout.write(to_csv(rows))
                return 0
            emit(rows, args.json or args.format == "json", lambda rs: table(rs, ["ref", "status", "priority", "requester", "assignee", "team",
                                                         "message_count", "subject"], {"subject": 50}))
            return 0
        ticket = find_ticket_by_ref(session, args.ref, prefix)
        if ticket is None:
            raise NotFound(f"no ticket {args.ref}; `maildesk tickets list` shows the tickets there are")
        emit(ticket_detail(session, ticket, prefix), args.json, _format_ticket)
    return 0


def _format_ticket(t: dict) -> str:
    lines = [f"{t['ref']}  {t['subject']}",
             f"  status {t['status']}   priority {t['priority']}   requester {t['requester']}   "
             f"assignee {t['assignee'] or '-'}   team {t['team'] or '-'}   tags {', '.join(t['tags']) or '-'}",
             f"  created {t['created_at']}   updated {t['updated_at']}"]
    if t.get("unassigned_reason"):
        lines.append(f"  unassigned: {t['unassigned_reason']}")
    links = [f"merged into {t['merged_into']}" if t["merged_into"] else "", f"follow-up of {t['parent']}" if t["parent"] else "",
             f"merged in: {', '.join(t['merged_in'])}" if t.get("merged_in") else ""]
    if any(links):
        lines.append("  " + "; ".join(x for x in links if x))
    if t["sla_policy"]:
        lines.append(f"  SLA {t['sla_policy']}: {_sla_words(t)}")
    if t.get("rating"):
        lines.append(f"  rating {t['rating']['score']}/5" + (f": {t['rating']['comment']}" if t["rating"]["comment"] else ""))
    lines += ["", "Messages:"]
    for m in t["messages"]:
        via = f", threaded by {m['thread_via']}" if m["thread_via"] else ""
        origin = f" (from merged {m['merged_from']})" if m.get("merged_from") else ""
        lines.append(f"  [{m['created_at'][:19]}] {m['direction']}/{m['kind']} from {m['from'] or '-'}{origin}{via}: {m['subject']}")
        for line in (m["text"] or "").strip().splitlines()[:6]:
            lines.append(f"      {line}")
        for a in m["attachments"]:
            lines.append(f"      (attachment {a['filename']}, {a['content_type']}, {a['size']} bytes)")
    lines += ["", "Events:"]
    for e in t["events"]:
        detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items() if v not in (None, "", [], {}))
        lines.append(f"  [{e['at'][:19]}] {e['actor']}: {e['kind']}" + (f" ({detail})" if detail else ""))
    return "\n".join(lines)


def _sla_words(t: dict) -> str:
    """First response (due, or when it was given), the next response while the customer waits, resolution."""
    sla = t["sla"]
    if t["first_response_at"]:
        parts = [f"first response at {t['first_response_at']}" + (f" (was due {sla['first_response_due']})" if sla["first_response_due"] else "")]
    else:
        parts = [f"first response due {sla['first_response_due'] or '-'}"]
    if sla["next_response_due"]:
        parts.append(f"next response due {sla['next_response_due']}")
    if t["resolved_at"]:
        parts.append(f"resolved at {t['resolved_at']}")
    elif t["closed_at"]:
        parts.append(f"closed at {t['closed_at']}")
    else:
        parts.append(f"resolution due {sla['resolution_due'] or '-'}")
    if sla["breached"]:
        parts.append(f"breached: {', '.join(sla['breached'])}")
    return ", ".join(parts) + (" (paused: pending)" if sla["paused"] else "")
