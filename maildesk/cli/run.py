"""``maildesk run`` (the daemon) and ``maildesk ingest`` (one message from an MTA's pipe)."""

from __future__ import annotations

import sys
from pathlib import Path

from maildesk.config.load import Config
from maildesk.errors import EX_DATAERR, EX_NOINPUT, EX_TEMPFAIL, EX_UNAVAILABLE, StorageError

__all__ = ["cmd_ingest", "cmd_run"]


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
