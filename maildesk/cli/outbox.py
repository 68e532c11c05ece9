"""``maildesk outbox``: list, show, retry and flush outgoing mail."""

from __future__ import annotations

import sys

from maildesk.cli.common import emit, one_or_all, open_db, require_failed
from maildesk.config.load import Config
from maildesk.errors import DataError, NotFound

__all__ = ["cmd_outbox"]


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
        emit(rows, args.json, lambda rs: table(rs, ["id", "status", "kind", "ticket", "to", "attempts", "next_attempt_at",
                                                     "last_error"], {"last_error": 60, "next_attempt_at": 19}))
        return 0
    if args.outbox_command == "show":
        return _show_mail(store, args, config)
    if args.outbox_command == "retry":
        one_or_all(args, "outbox retry")
        with store.transaction() as session:
            if not args.all:
                require_failed(session.get(Outbox, args.id), f"outgoing mail {args.id}", "outbox list", "mail")
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
    emit(view, args.json, format_sent_mail)
    return 0
