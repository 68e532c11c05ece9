"""``maildesk imap check``: try every configured ``[[imap]]`` mailbox once.

For each mailbox: can we connect and log in, does the folder exist and how many
messages it holds, does the server offer IDLE and MOVE, and which UID maildesk has
committed up to. Exit status 1 when any mailbox cannot log in or lacks its folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from maildesk.config.load import Config, ImapConfig

__all__ = ["COMMANDS", "add_commands", "check_mailbox", "cmd_imap"]

CHECK_TIMEOUT = 15.0
COLUMNS = ["name", "host", "login", "folder", "idle", "messages", "move", "last_uid"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    imap = sub.add_parser("imap", help="IMAP mailboxes").add_subparsers(dest="imap_command", required=True)
    check = imap.add_parser("check", help="log in to each [[imap]] mailbox once and report what works")
    check.add_argument("names", nargs="*", metavar="NAME", help="only these mailboxes (default: all)")
    check.add_argument("--json", action="store_true")


def _known_marks(config: Config) -> dict[tuple[str, str], tuple[int, int]] | None:
    """(mailbox, folder) -> (uidvalidity, last_uid), or None when the database cannot say."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from maildesk.errors import MaildeskError
    from maildesk.storage.models import ImapState
    from maildesk.storage.store import store_for

    try:
        store = store_for(config, create=False, writes=False)
        try:
            with store.read() as session:
                return {(r.mailbox, r.folder): (r.uidvalidity, r.last_uid) for r in session.scalars(select(ImapState))}
        finally:
            store.dispose()
    except (MaildeskError, SQLAlchemyError):
        return None


def check_mailbox(box: ImapConfig, marks: dict | None) -> dict:
    """One mailbox's report: the table columns plus ``ok`` and ``problems``."""
    from maildesk.ingest.imapconn import connect, describe_error

    row = {"name": box.name, "host": f"{box.host}:{box.port} ({box.security})", "login": "-", "folder": "-",
           "idle": "-", "messages": "-", "move": "-", "last_uid": "-", "ok": False, "problems": []}
    known = (marks or {}).get((box.name, box.folder))
    row["last_uid"] = "?" if marks is None else (known[1] if known else "none yet")
    try:
        client = connect(dataclasses.replace(box, timeout=min(box.timeout, CHECK_TIMEOUT)))
    except Exception as exc:  # every failure is a finding to report
        row["login"] = "error"
        row["problems"].append(describe_error(exc))
        return row
    try:
        row["login"] = "ok"
        caps = set(client.capabilities())
        row["idle"] = "yes" if b"IDLE" in caps else "no (polls)"
        row["move"] = "yes" if b"MOVE" in caps else "no (copy+delete)"
        if not client.folder_exists(box.folder):
            row["folder"] = "missing"
            row["problems"].append(f"folder {box.folder!r} does not exist")
        else:
            info = client.select_folder(box.folder, readonly=True)
            row["folder"], row["messages"] = "ok", int(info.get(b"EXISTS", 0))
            uidvalidity = int(info.get(b"UIDVALIDITY", 0))
            if known and known[0] != uidvalidity:
                row["last_uid"] = f"{known[1]} (UIDVALIDITY changed: folder will be re-read)"
        if box.after == "move" and not client.folder_exists(box.move_to):
            row["problems"].append(f"move_to folder {box.move_to!r} does not exist yet (created at the first run)")
    except Exception as exc:  # a server that logs in but then fails is a finding too
        row["problems"].append(describe_error(exc))
        if row["folder"] == "-":
            row["folder"] = "error"
    finally:
        try:
            client.logout()
        except Exception:  # best effort
            client.shutdown()
    row["ok"] = row["login"] == "ok" and row["folder"] == "ok"
    return row


def cmd_imap(args, config: Config) -> int:
    from maildesk.tickets.views import table

    boxes = [b for b in config.imap if not args.names or b.name in args.names]
    unknown = sorted(set(args.names) - {b.name for b in config.imap})
    if unknown:
        print(f"maildesk: no [[imap]] mailbox named {', '.join(unknown)}", file=sys.stderr)
        return 1
    if not boxes:
        print("no [[imap]] mailboxes configured in", config.path)
        return 0
    from maildesk.daemon.logsetup import bind

    marks = _known_marks(config)
    rows = []
    for box in boxes:
        with bind(imap=box.name):
            rows.append(check_mailbox(box, marks))
    if args.json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(table(rows, COLUMNS, {"host": 50, "last_uid": 50}))
        notes = [f"{r['name']}: {p}" for r in rows for p in r["problems"]]
        if notes:
            print()
            print("\n".join(notes))
        failed = [r["name"] for r in rows if not r["ok"]]
        print()
        print(f"{len(rows) - len(failed)} of {len(rows)} mailbox(es) ok" + (f"; failing: {', '.join(failed)}" if failed else ""))
    return 0 if all(r["ok"] for r in rows) else 1


COMMANDS = {"imap": cmd_imap}
