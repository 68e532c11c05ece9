"""The ``maildesk`` command: argument parsing and dispatch to the module of each command.

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
import os

from maildesk import __version__
from maildesk.cli import events, imap, jobs, notices, people, rules, status
from maildesk.cli.args import Parser, positive, read_only
from maildesk.cli.db import cmd_db
from maildesk.cli.errors import guarded
from maildesk.cli.inbox import cmd_inbox
from maildesk.cli.outbox import cmd_outbox
from maildesk.cli.people import add_attachment_parser
from maildesk.cli.report import add_report_parser, cmd_report
from maildesk.cli.run import cmd_ingest, cmd_run
from maildesk.cli.search import add_list_arguments
from maildesk.cli.tickets import cmd_tickets
from maildesk.config.credentials import without_generating
from maildesk.config.load import find_config_path, load_config
from maildesk.daemon.logsetup import configure
from maildesk.vocab import INBOX_STATUSES, STATUSES

__all__ = ["main"]

_GROUPS = (rules, imap, jobs, events, status, people, notices)  # each: add_commands(subparsers) and COMMANDS {name: handler}


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
    add_list_arguments(tl, STATUSES)
    tl.add_argument("--limit", type=positive(), default=200)
    tl.add_argument("--json", action="store_true")
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


_COMMANDS = {"report": cmd_report, "run": cmd_run, "ingest": cmd_ingest, "db": cmd_db, "inbox": cmd_inbox, "tickets": cmd_tickets,
             "outbox": cmd_outbox, **{name: handler for group in _GROUPS for name, handler in group.COMMANDS.items()}}
