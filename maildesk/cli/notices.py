"""``maildesk notices list [--failed] [--json]`` and ``maildesk notices retry ID|--all``.

A notice is an agent notification decided by processing and rendered by the delivery
worker (:mod:`maildesk.outgoing.notices`). One that could not be rendered within
``[outbound] notice_max_attempts`` is kept as ``failed``; ``retry`` makes it due again
(the daemon, or ``maildesk outbox flush``, mails it), with the exit codes of ``outbox retry``.
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace

from maildesk.cli.args import positive
from maildesk.config.load import Config

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    notices = sub.add_parser("notices", help="agent notifications waiting to be rendered, or failed").add_subparsers(
        dest="notices_command", required=True)
    nl = notices.add_parser("list", help="list notices, newest first (status done, pending or failed)")
    nl.add_argument("--failed", action="store_true", help="only notices that failed for good")
    nl.add_argument("--limit", type=positive(), default=100)
    nl.add_argument("--json", action="store_true")
    nr = notices.add_parser("retry", help="make failed notices due again")
    nr.add_argument("id", nargs="?", type=positive())
    nr.add_argument("--all", action="store_true")


def _status(notice) -> str:
    """done (mailed), pending or failed: a done notice keeps the status it had."""
    return "done" if notice.done_at is not None else notice.status


def _view(notice, prefix: str) -> dict:
    from maildesk.parse.subjects import format_ref

    def iso(value):
        return value.isoformat() if value is not None else None

    return {"id": notice.id, "status": _status(notice), "event": notice.event,
            "ticket": format_ref(prefix, notice.ticket_id), "agents": list(notice.agents), "addresses": list(notice.addresses),
            "attempts": notice.attempts, "created_at": iso(notice.created_at),
            "next_attempt_at": iso(notice.next_attempt_at) if notice.done_at is None and notice.status == "pending" else None,
            "done_at": iso(notice.done_at), "last_error": notice.last_error}


def cmd_notices(args, config: Config) -> int:
    from sqlalchemy import select

    from maildesk.cli.common import emit, one_or_all, open_db, require_failed
    from maildesk.storage.models import Notice
    from maildesk.tickets.views import table

    if args.notices_command == "retry":
        one_or_all(args, "notices retry")  # the arguments first: a usage error opens nothing
    store = open_db(config, args)
    if args.notices_command == "list":
        with store.read() as session:
            q = select(Notice).order_by(Notice.id.desc()).limit(args.limit)
            if args.failed:
                q = q.where(Notice.status == "failed", Notice.done_at.is_(None))
            rows = [_view(n, config.mail.ticket_prefix) for n in session.scalars(q)]
        emit(rows, args.json, lambda rs: table([{**r, "to": r["agents"] + r["addresses"]} for r in rs],
                                                ["id", "status", "event", "ticket", "to", "attempts", "next_attempt_at",
                                                 "last_error"], {"next_attempt_at": 19, "last_error": 60}))
        return 0
    from maildesk.daemon.build import utcnow
    from maildesk.outgoing.notices import retry

    with store.transaction() as session:
        if not args.all:  # as outbox retry: a missing one is 66, one that did not fail 65
            notice = session.get(Notice, args.id)
            view = None if notice is None else SimpleNamespace(status=_status(notice))
            require_failed(view, f"notice {args.id}", "notices list", "notice")
        n = retry(session, utcnow(), None if args.all else args.id)
    print(f"{n} notice(s) due again; the daemon (or `maildesk outbox flush`) mails them")
    return 0


COMMANDS = {"notices": cmd_notices}
