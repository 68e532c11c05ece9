"""People and files: `maildesk customers show ADDRESS` (a requester's tickets, first and
last contact, satisfaction) and `maildesk tickets attachment REF [NAME] -o PATH` (an
attachment's bytes exactly as received, checked against their stored sha256)."""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
from pathlib import Path

from maildesk.errors import DataError, NotFound, UsageError

__all__ = ["COMMANDS", "add_attachment_parser", "add_commands", "cmd_attachment", "cmd_customers", "customer_view"]


def add_commands(sub) -> None:
    customers = sub.add_parser("customers", help="people who write to support").add_subparsers(dest="customers_command", required=True)
    cs = customers.add_parser("show", help="a customer's tickets, first and last contact, satisfaction")
    cs.add_argument("address")
    cs.add_argument("--json", action="store_true")
    rk = customers.add_parser("rotate-key", help="void every status-page link mailed to this customer (new links from now on)")
    rk.add_argument("address")
    sl = customers.add_parser("status-link", help="the customer's current status-page link ([web] must be on)")
    sl.add_argument("address")


def add_attachment_parser(tickets) -> None:
    ta = tickets.add_parser("attachment", help="write an attachment out exactly as received")
    ta.add_argument("ref", help="the ticket, e.g. MD-12")
    ta.add_argument("name", nargs="?", help="the file name (needed when the ticket has several attachments)")
    ta.add_argument("-o", "--output", metavar="PATH", help="where to write it (default: standard output)")


def _iso(value):
    return value.isoformat() if value else None


def customer_view(session, address: str, prefix: str) -> dict:
    from sqlalchemy import func, select

    from maildesk.parse.subjects import format_ref
    from maildesk.storage.models import Contact, Rating, Ticket, TicketMessage

    contact = session.scalar(select(Contact).where(func.lower(Contact.address) == address.strip().lower()))
    if contact is None:
        raise NotFound(f"no customer {address}; `maildesk tickets list --requester DOMAIN` lists the requesters of a domain")
    tickets = list(session.scalars(select(Ticket).where(Ticket.requester_id == contact.id).order_by(Ticket.id)))
    ids = [t.id for t in tickets]
    last_mail = session.scalar(select(func.max(TicketMessage.created_at)).where(TicketMessage.direction == "in",
                                                                               func.lower(TicketMessage.from_addr) == contact.address.lower()))
    ratings = list(session.execute(select(Rating.ticket_id, Rating.score, Rating.comment, Rating.at).where(Rating.ticket_id.in_(ids)))) if ids else []
    firsts = [t.created_at for t in tickets]
    return {
        "address": contact.address, "name": contact.name,
        "first_contact": _iso(min(firsts)) if firsts else _iso(contact.created_at),
        "last_contact": _iso(max([x for x in (last_mail, *firsts) if x is not None])) if firsts or last_mail else None,
        "tickets": [{"ref": format_ref(prefix, t.id), "status": t.status, "priority": t.priority, "team": t.team,
                     "created_at": _iso(t.created_at), "subject": t.subject, "merged_into": format_ref(prefix, t.merged_into_id) if t.merged_into_id else None}
                    for t in tickets],
        "satisfaction": {"ratings": len(ratings), "average": round(statistics.mean(r.score for r in ratings), 2) if ratings else None,
                         "comments": [{"ref": format_ref(prefix, r.ticket_id), "score": r.score, "comment": r.comment} for r in ratings if r.comment]},
    }


def _format_customer(c: dict) -> str:
    sat = c["satisfaction"]
    lines = [f"{c['name'] or '-'} <{c['address']}>", f"  first contact {c['first_contact'] or '-'}   last contact {c['last_contact'] or '-'}",
             f"  satisfaction  {sat['ratings']} rating(s), average {sat['average'] if sat['average'] is not None else '-'}",
             f"  tickets       {len(c['tickets'])}"]
    for t in c["tickets"]:
        lines.append(f"    {t['ref']:<10} {t['status']:<9} {t['created_at'][:16]}  {t['subject'][:50]}")
    for r in sat["comments"]:
        lines.append(f"  {r['ref']} rated {r['score']}: {r['comment'][:70]}")
    return "\n".join(lines)


def cmd_customers(args, config) -> int:
    from maildesk.cli.common import open_db

    if args.customers_command in ("rotate-key", "status-link"):
        return _status_key(args, config, open_db(config, args))
    with open_db(config, args).read() as session:
        view = customer_view(session, args.address, config.mail.ticket_prefix)
    print(json.dumps(view, ensure_ascii=False, indent=2) if args.json else _format_customer(view))
    return 0


def cmd_attachment(args, config) -> int:
    from sqlalchemy import select

    from maildesk.cli.common import open_db
    from maildesk.storage.models import Blob, MessageAttachment, TicketMessage
    from maildesk.tickets.views import find_ticket_by_ref

    with open_db(config, args).read() as session:
        ticket = find_ticket_by_ref(session, args.ref, config.mail.ticket_prefix)
        if ticket is None:
            raise NotFound(f"no ticket {args.ref}; `maildesk tickets list` shows the tickets there are")
        atts = list(session.scalars(select(MessageAttachment).join(TicketMessage, TicketMessage.id == MessageAttachment.message_id)
                                    .where(TicketMessage.ticket_id == ticket.id).order_by(MessageAttachment.id)))
        names = ", ".join(a.filename or f"(unnamed #{a.id})" for a in atts) or "none"
        chosen = [a for a in atts if args.name is None or a.filename == args.name]
        if not chosen:
            raise NotFound(f"{args.ref} has no attachment named {args.name!r}; its attachments: {names}")
        if len(chosen) > 1 and len({a.sha256 for a in chosen}) > 1:
            raise UsageError(f"{args.ref} has {len(chosen)} attachments{' named ' + repr(args.name) if args.name else ''}; name one: {names}")
        att = chosen[0]
        data = session.get(Blob, att.sha256).data
    if hashlib.sha256(data).hexdigest() != att.sha256:
        raise DataError(f"attachment {att.filename!r} of {args.ref}: the stored bytes do not match their sha256 {att.sha256}; the database is damaged")
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"{args.output}: {len(data):,} bytes, sha256 {att.sha256}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
    return 0


def _status_key(args, config, store) -> int:
    """``rotate-key``: a new key generation, so the old links answer 404; ``status-link``: the link now."""
    from datetime import UTC, datetime

    from maildesk.outgoing.statuslinks import rotate_key, status_url

    address = args.address.strip().lower()
    secret = config.mail.secret.reveal()
    if args.customers_command == "rotate-key":
        with store.transaction() as session:
            gen = rotate_key(session, address, datetime.now(UTC))
            link = status_url(session, config, secret, address)
        print(f"{address}: status-page key rotated (generation {gen}); every link mailed before no longer works", file=sys.stderr)
        if link:
            print(link)
        return 0
    with store.read() as session:
        link = status_url(session, config, secret, address)
    if link is None:
        raise UsageError(f"{config.path}: [web] listen is not set (or status_links = false): there are no status pages")
    print(link)
    return 0


COMMANDS = {"customers": cmd_customers}
