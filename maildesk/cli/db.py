"""``maildesk db``: upgrade, status and vacuum of the database."""

from __future__ import annotations

from maildesk.cli.common import open_db
from maildesk.config.load import Config

__all__ = ["cmd_db"]


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
