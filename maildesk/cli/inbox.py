"""``maildesk inbox``: list accepted raw messages, retry failed ones, process pending ones now."""

from __future__ import annotations

from maildesk.cli.common import emit, one_or_all, open_db, require_failed
from maildesk.config.load import Config

__all__ = ["cmd_inbox"]


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
        emit(rows, args.json, lambda rs: table(rs, ["id", "status", "received_at", "source", "ticket", "outcome", "error"],
                                                {"received_at": 19, "outcome": 50, "error": 60}))
        return 0
    if args.inbox_command == "retry":
        one_or_all(args, "inbox retry")
        with store.transaction() as session:
            if not args.all:
                require_failed(session.get(InboxMail, args.id), f"inbox message {args.id}", "inbox list", "message")
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
