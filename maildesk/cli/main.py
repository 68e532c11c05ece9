"""The ``maildesk`` command: argument parsing and the core commands.

Exit codes (sysexits(3), listed in the README): 0 ok; 1 the command ran and the answer
is no (``rules check`` found problems, ``db status`` is behind); 64 a wrong argument; 65
data that cannot be used; 66 the file, ticket or mail named does not exist; 69 the
database or the listening address is unavailable; 70 a bug; 74 an I/O error; 75 try
again later (``maildesk ingest`` when the message could not be stored, so an MTA's pipe
transport retries); 78 a config error, or no database yet. How an exception becomes
one of these: :mod:`maildesk.cli.errors`. Read-only commands create nothing: no
database file, no generated secret.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from maildesk import __version__
from maildesk.cli import events, imap, jobs, people, rules, status
from maildesk.cli.args import Parser, positive, read_only
from maildesk.cli.errors import guarded
from maildesk.config.credentials import without_generating
from maildesk.config.load import Config, find_config_path, load_config
from maildesk.daemon.logsetup import configure
from maildesk.errors import EX_DATAERR, EX_NOINPUT, EX_TEMPFAIL, EX_UNAVAILABLE, DataError, NotFound, StorageError, UsageError
from maildesk.vocab import INBOX_STATUSES, STATUSES

__all__ = ["main"]

_GROUPS = (rules, imap, jobs, events, status, people)  # each: add_commands(subparsers) and COMMANDS {name: handler}


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="maildesk", description="An email-driven helpdesk daemon.")
    p.add_argument("--config", "-c", help="config file (default: $MAILDESK_CONFIG, else ./maildesk.toml)")
    p.add_argument("--version", action="version", version=f"maildesk {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="run the daemon (listener, processing, outbox, jobs)")
    ingest = sub.add_parser("ingest", help="store one raw message from FILE or stdin (MTA pipe delivery)")
    ingest.add_argument("file", nargs="?", help="message file (default: standard input)")
    ingest.add_argument("--sender", "-f", default="", help="envelope sender, e.g. Postfix pipe's ${sender}")
    ingest.add_argument("--recipient", "-r", action="append", default=[], help="envelope recipient (repeatable)")
    ingest.add_argument("--process", action="store_true", help="also process it now instead of leaving it to the daemon")

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply pending migrations")
    db.add_parser("status", help="show the schema revision")
    dv = db.add_parser("vacuum", help="remove the bytes of sent mail past [outbound] keep_sent_days, reclaim the space")
    dv.add_argument("--full", action="store_true", help="PostgreSQL: VACUUM FULL (returns space to the OS; locks each table)")

    inbox = sub.add_parser("inbox", help="accepted raw messages").add_subparsers(dest="inbox_command", required=True)
    il = inbox.add_parser("list", help="list inbox rows")
    il.add_argument("--failed", action="store_true", help="only rows whose processing failed")
    il.add_argument("--status", choices=INBOX_STATUSES, help="only rows with this status")
    il.add_argument("--limit", type=positive(), default=100)
    il.add_argument("--json", action="store_true")
    ir = inbox.add_parser("retry", help="process failed rows again")
    ir.add_argument("id", nargs="?", type=positive())
    ir.add_argument("--all", action="store_true")
    ip = inbox.add_parser("process", help="process pending rows now (the daemon does this on its own)")
    ip.add_argument("--limit", type=positive(), default=1000)

    tickets = sub.add_parser("tickets", help="tickets").add_subparsers(dest="tickets_command", required=True)
    tl = tickets.add_parser("list", help="list tickets")
    from maildesk.cli.search import add_list_arguments

    add_list_arguments(tl, STATUSES)
    tl.add_argument("--limit", type=positive(), default=200)
    tl.add_argument("--json", action="store_true")
    from maildesk.cli.people import add_attachment_parser

    add_attachment_parser(tickets)
    ts = tickets.add_parser("show", help="one ticket with its messages and events")
    ts.add_argument("ref", help="MD-1042 or 1042")
    ts.add_argument("--json", action="store_true")

    outbox = sub.add_parser("outbox", help="outgoing mail").add_subparsers(dest="outbox_command", required=True)
    ol = outbox.add_parser("list", help="list outgoing mail")
    ol.add_argument("--failed", action="store_true")
    ol.add_argument("--limit", type=positive(), default=100)
    ol.add_argument("--json", action="store_true")
    osh = outbox.add_parser("show", help="one outgoing mail: its headers and text, decoded")
    osh.add_argument("id", type=positive(), help="the ID from `outbox list`")
    osh.add_argument("--raw", action="store_true", help="the mail exactly as sent")
    osh.add_argument("--header", metavar="NAME", help="only this header's value, decoded (e.g. Reply-To, for scripts)")
    osh.add_argument("--json", action="store_true")
    orr = outbox.add_parser("retry", help="queue failed mail again")
    orr.add_argument("id", nargs="?", type=positive())
    orr.add_argument("--all", action="store_true")
    outbox.add_parser("flush", help="deliver what is due now and exit")

    from maildesk.cli.report import add_report_parser

    add_report_parser(sub)

    for group in _GROUPS:
        group.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # the database, its WAL, var/secret, sent mail and logs hold mail: owner only
    args = _parser().parse_args(argv)
    return guarded(lambda: _dispatch(args), tempfail=args.command == "ingest")


def _dispatch(args: argparse.Namespace) -> int:
    with without_generating() if read_only(args) else contextlib.nullcontext():
        config = load_config(find_config_path(args.config))
    configure(config.log.level, config.log.redact_addresses)
    handler = _COMMANDS.get(args.command)
    if handler is None:
        raise SystemExit(f"maildesk: unknown command {args.command}")
    return handler(args, config)


def open_db(config: Config, args: argparse.Namespace):
    """The store of an existing, up-to-date database; read-only commands take no write lock."""
    from maildesk.storage.store import existing_store

    return existing_store(config, writes=not read_only(args))


def _emit(data, as_json: bool, human) -> None:
    if as_json:
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(human(data))


def cmd_run(args, config: Config) -> int:
    import asyncio

    from maildesk.daemon.root import Daemon

    asyncio.run(Daemon(config).run())
    return 0


def cmd_ingest(args, config: Config) -> int:
    from maildesk.ingest.pipe import sqlite_path, store_sqlite

    try:
        raw = Path(args.file).read_bytes() if args.file else sys.stdin.buffer.read()
    except OSError as exc:
        print(f"maildesk: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EX_NOINPUT
    if not raw.strip():
        print("maildesk: empty message; nothing stored", file=sys.stderr)
        return EX_DATAERR
    if len(raw) > config.smtp.max_message_size:
        print(f"maildesk: message of {len(raw)} bytes exceeds [smtp] max_message_size ({config.smtp.max_message_size})",
              file=sys.stderr)
        return EX_UNAVAILABLE  # the MTA bounces it
    rcpt = tuple(args.recipient) or (config.mail.primary,)
    path = sqlite_path(config.database.url)
    try:  # no Alembic check here: a pipe runs once per message, start-up counts
        if path is not None and not args.process:
            inbox_id = store_sqlite(path, raw, args.sender, rcpt, synchronous=config.database.sqlite_synchronous)
        else:
            from maildesk.ingest.intake import Intake, RawMail
            from maildesk.storage.store import store_for as build_store

            store = build_store(config)
            inbox_id = Intake(store).store_one(RawMail(raw, args.sender, rcpt, "pipe"))
    except StorageError as exc:
        print(f"maildesk: could not store the message, the MTA should retry: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    print(f"stored inbox {inbox_id}")
    if args.process:
        from maildesk.daemon.build import build_desk, sync_directory
        from maildesk.process.pipeline import process_pending

        desk = build_desk(config, store)
        sync_directory(desk)
        for res in process_pending(desk, ids=[inbox_id]):
            print(f"{res.status}: {res.text.splitlines()[-1] if res.text else ''}")
    return 0


def cmd_db(args, config: Config) -> int:
    from maildesk.storage.store import store_for

    if args.db_command == "vacuum":
        return _vacuum(args, config)
    store = store_for(config, create=args.db_command == "upgrade", writes=args.db_command == "upgrade")
    if args.db_command == "upgrade":
        before, after = store.upgrade()
        print(f"database at revision {after}" + (f" (was {before or 'empty'})" if before != after else " (up to date)"))
    else:
        current, head = store.current_revision(), store.head_revision()
        print(f"current: {current or 'empty'}\nhead:    {head}\n" + ("up to date" if current == head else "run `maildesk db upgrade`"))
        return 0 if current == head else 1
    return 0


def _vacuum(args, config: Config) -> int:
    from maildesk.daemon.build import utcnow
    from maildesk.storage.vacuum import vacuum

    store = open_db(config, args)
    try:
        r = vacuum(store, utcnow(), config.outbound.keep_sent_days, full=args.full)
    finally:
        store.dispose()
    print(f"removed {r['purged']} sent mail bod{'y' if r['purged'] == 1 else 'ies'} ({r['purged_bytes']:,} bytes) "
          f"older than {config.outbound.keep_sent_days:g} day(s)")
    print(f"database: {r['before']:,} bytes before, {r['after']:,} bytes after ({r['before'] - r['after']:,} reclaimed)")
    return 0


def cmd_inbox(args, config: Config) -> int:
    from sqlalchemy import select

    from maildesk.daemon.build import build_desk
    from maildesk.process.pipeline import process_pending, retry_inbox
    from maildesk.storage.models import InboxMail
    from maildesk.tickets.views import inbox_view, table

    store = open_db(config, args)
    prefix = config.mail.ticket_prefix
    if args.inbox_command == "list":
        with store.read() as session:
            q = select(InboxMail).order_by(InboxMail.id.desc()).limit(args.limit)
            status = "failed" if args.failed else args.status
            if status:
                q = q.where(InboxMail.status == status)
            rows = [inbox_view(r, prefix) for r in session.scalars(q.options())]
        _emit(rows, args.json, lambda rs: table(rs, ["id", "status", "received_at", "source", "ticket", "outcome", "error"],
                                                {"received_at": 19, "outcome": 50, "error": 60}))
        return 0
    if args.inbox_command == "retry":
        _one_or_all(args, "inbox retry")
        with store.transaction() as session:
            if not args.all:
                _require_failed(session.get(InboxMail, args.id), f"inbox message {args.id}", "inbox list", "message")
            n = retry_inbox(session, None if args.all else args.id)
        print(f"{n} message(s) queued for processing again")
        return 0
    from maildesk.daemon.build import sync_directory

    desk = build_desk(config, store)
    sync_directory(desk)
    results = process_pending(desk, args.limit)
    for res in results:
        print(f"inbox {res.inbox_id}: {res.status}: {res.text.splitlines()[-1] if res.text else ''}")
    return 1 if any(r.status == "failed" for r in results) else 0


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
            _emit(rows, args.json or args.format == "json", lambda rs: table(rs, ["ref", "status", "priority", "requester", "assignee", "team",
                                                         "message_count", "subject"], {"subject": 50}))
            return 0
        ticket = find_ticket_by_ref(session, args.ref, prefix)
        if ticket is None:
            raise NotFound(f"no ticket {args.ref}; `maildesk tickets list` shows the tickets there are")
        _emit(ticket_detail(session, ticket, prefix), args.json, _format_ticket)
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


def cmd_outbox(args, config: Config) -> int:
    from sqlalchemy import select

    from maildesk.daemon.build import utcnow
    from maildesk.outgoing.deliver import make_deliverer
    from maildesk.outgoing.outbox import drain, retry
    from maildesk.storage.models import Outbox
    from maildesk.tickets.views import outbox_view, table

    store = open_db(config, args)
    if args.outbox_command == "list":
        with store.read() as session:
            q = select(Outbox).order_by(Outbox.id.desc()).limit(args.limit)
            if args.failed:
                q = q.where(Outbox.status.in_(("failed", "bounced")))
            rows = [outbox_view(r, config.mail.ticket_prefix) for r in session.scalars(q)]
        _emit(rows, args.json, lambda rs: table(rs, ["id", "status", "kind", "ticket", "to", "attempts", "next_attempt_at",
                                                     "last_error"], {"last_error": 60, "next_attempt_at": 19}))
        return 0
    if args.outbox_command == "show":
        return _show_mail(store, args, config)
    if args.outbox_command == "retry":
        _one_or_all(args, "outbox retry")
        with store.transaction() as session:
            if not args.all:
                _require_failed(session.get(Outbox, args.id), f"outgoing mail {args.id}", "outbox list", "mail")
            n = retry(session, utcnow(), None if args.all else args.id)
        print(f"{n} mail(s) queued for delivery again")
        return 0
    from maildesk.daemon.build import build_desk
    from maildesk.outgoing.notices import send_notices

    noticed = 0  # notifications the daemon decided on and had not rendered yet
    desk = build_desk(config, store)
    while n := send_notices(desk):
        noticed += n
    deliverer = make_deliverer(config.outbound, config.base_dir, config.mail.primary.split("@")[1])
    res = drain(store, deliverer, config.outbound, utcnow, limit=10_000, suppress_days=config.mail.suppress_days)
    print(f"sent {res.sent}, deferred {res.retried}, failed {res.failed}" + (f"; {noticed} notification(s) rendered" if noticed else ""))
    return 0


def _one_or_all(args, command: str) -> None:
    if args.id is None and not args.all:
        raise UsageError(f"{command} needs an ID or --all")
    if args.id is not None and args.all:
        raise UsageError(f"{command}: give an ID or --all, not both")


def _require_failed(row, what: str, listing: str, noun: str) -> None:
    """Only failed rows are retried: anything else named by ID is an error that says why."""
    if row is None:
        raise NotFound(f"no {what}; `maildesk {listing}` shows the IDs")
    if row.status != "failed":
        raise DataError(f"{what} is {row.status}, not failed; only a failed {noun} is retried")


def _show_mail(store, args, config: Config) -> int:
    from maildesk.storage.models import Outbox
    from maildesk.tickets.views import format_sent_mail, sent_mail_view

    with store.read() as session:
        row = session.get(Outbox, args.id)
        if row is None:
            raise NotFound(f"no outgoing mail {args.id}; `maildesk outbox list` shows the IDs")
        if args.raw:
            if row.raw is None:
                raise DataError(f"outgoing mail {args.id} was sent and its bytes removed after [outbound] keep_sent_days; "
                                "only its envelope and Message-ID are kept")
            sys.stdout.buffer.write(row.raw)
            return 0
        view = sent_mail_view(row, config.mail.ticket_prefix)
    if args.header:
        values = [value for name, value in view["headers"] if name.lower() == args.header.lower()]
        if not values:
            raise DataError(f"outgoing mail {args.id} has no {args.header} header")
        print("\n".join(values))
        return 0
    _emit(view, args.json, format_sent_mail)
    return 0


def cmd_report(args, config: Config) -> int:
    from maildesk.cli.report import cmd_report as report

    return report(args, config)


_COMMANDS = {"report": cmd_report, "run": cmd_run, "ingest": cmd_ingest, "db": cmd_db, "inbox": cmd_inbox, "tickets": cmd_tickets,
             "outbox": cmd_outbox, **{name: handler for group in _GROUPS for name, handler in group.COMMANDS.items()}}
