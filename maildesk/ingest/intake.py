"""Durable accept: raw bytes are committed before any transport is told "ok".

:meth:`Intake.store` writes a batch of raw messages in one transaction (one fsync).
:meth:`Intake.submit` is the asyncio entry point used by the SMTP listener: every
submission waits in a queue, one writer drains whatever has piled up while the previous
batch was committing and commits it as one batch (group commit). Each caller's future
resolves only after its batch has committed, so "250 after commit" holds for each
message, while a burst of N messages costs far fewer than N fsyncs. A group holds at most
``max_batch`` messages and ``max_batch_bytes`` of raw mail (``[smtp] commit_batch`` and
``commit_batch_bytes``; the first message is taken whatever its size): the database
driver copies every message it binds, so several 25 MB mails committed together would
cost the listener several times their size at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from maildesk.daemon.memtrim import TRIM_AFTER, trim
from maildesk.errors import StorageError
from maildesk.storage.models import InboxMail
from maildesk.storage.rawblob import store_raw
from maildesk.storage.store import Store

__all__ = ["Intake", "RawMail"]

log = logging.getLogger("maildesk.ingest")
_INBOX = InboxMail.__table__
_STORED = select(_INBOX.c.sha256, _INBOX.c.id).where(_INBOX.c.sha256.in_(bindparam("digests", expanding=True)))
_INSERT = insert(_INBOX).returning(_INBOX.c.id, sort_by_parameter_order=True)


@dataclass(frozen=True)
class RawMail:
    raw: bytes | bytearray  # the listener's DATA buffer itself, not a copy of it
    mail_from: str
    rcpt_to: tuple[str, ...]
    source: str
    queue: str | None = None


class Intake:
    def __init__(self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 *, max_batch: int = 256, max_batch_bytes: int = 33_554_432, on_stored: Callable[[], None] | None = None):
        self.store, self.clock, self.max_batch, self.max_batch_bytes = store, clock, max_batch, max_batch_bytes
        self.on_stored = on_stored
        self._queue: asyncio.Queue | None = None
        self._writer: asyncio.Task | None = None

    # -- synchronous: pipe ingest, IMAP, tests -------------------------------------------
    def store_batch(self, items: list[RawMail], extra: Callable[[Session], None] | None = None) -> list[int]:
        """Commit ``items`` in one transaction; returns their inbox ids (an identical copy
        already stored returns the existing id). ``extra(session)`` runs inside the same
        transaction, e.g. to advance an IMAP mailbox's last UID atomically with its mail."""
        if not items:
            return []
        now = self.clock()
        digests = [hashlib.sha256(item.raw).hexdigest() for item in items]
        try:
            with self.store.transaction(priority=True, changes_state=False) as session:
                existing = dict(session.execute(_STORED, {"digests": list(set(digests))}).all())
                rows: dict[str, dict] = {}
                for item, digest in zip(items, digests, strict=True):
                    if digest not in existing and digest not in rows:
                        rows[digest] = {"received_at": now, "source": item.source, "mail_from": item.mail_from,
                                        "rcpt_to": list(item.rcpt_to), "size": len(item.raw), "sha256": digest,
                                        "raw": item.raw, "status": "pending", "attempts": 0, "queue": item.queue}
                if rows:
                    raws = [row.pop("raw") for row in rows.values()]
                    new_ids = session.execute(_INSERT, list(rows.values())).scalars().all()
                    store_raw(session, list(zip(new_ids, raws, strict=True)))  # inbox_raw, in pieces on SQLite
                    del raws
                    existing.update(zip(rows, new_ids, strict=True))
                if extra is not None:
                    extra(session)
                ids = [existing[d] for d in digests]
        except SQLAlchemyError as exc:
            hint = "; run `maildesk db upgrade`" if "no such table" in str(exc) or "does not exist" in str(exc) else ""
            raise StorageError(f"could not store the message: {exc.__class__.__name__}: {str(exc).splitlines()[0]}{hint}") from exc
        if self.on_stored is not None and rows:
            self.on_stored()
        if sum(len(item.raw) for item in items) >= TRIM_AFTER:
            trim()  # the freed pages of a large mail go back now, not when glibc gets to it (maildesk.daemon.memtrim)
        return ids

    def store_one(self, item: RawMail) -> int:
        return self.store_batch([item])[0]

    # -- asynchronous group commit: the SMTP listener ------------------------------------
    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="intake-writer")

    async def stop(self) -> None:
        """Commit everything already submitted, then stop."""
        if self._queue is None:
            return
        await self._queue.put(None)
        if self._writer is not None:
            await self._writer
        self._queue = None

    async def submit(self, item: RawMail) -> int:
        if self._queue is None:
            raise StorageError("intake is not running")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _write_loop(self) -> None:
        assert self._queue is not None
        stopping = False
        held = None  # taken from the queue, over the last group's byte limit: it starts the next
        while not stopping or held is not None:
            first, held = (held, None) if held is not None else (await self._queue.get(), None)
            batch = []
            try:
                if first is None:
                    stopping = True
                else:
                    batch.append(first)
                size = len(first[0].raw) if first is not None else 0
                while len(batch) < self.max_batch and not self._queue.empty():
                    nxt = self._queue.get_nowait()
                    if nxt is None:
                        stopping = True
                        continue
                    if batch and size + len(nxt[0].raw) > self.max_batch_bytes:
                        held = nxt
                        break
                    size += len(nxt[0].raw)
                    batch.append(nxt)
                if not batch:
                    continue
                try:
                    ids = await asyncio.to_thread(self.store_batch, [item for item, _ in batch])
                except Exception as exc:  # each waiting session answers 451 with this error
                    log.error("storing %d accepted message(s) failed: %s", len(batch), exc)
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc if isinstance(exc, StorageError) else StorageError(str(exc)))
                    continue
                for (_, fut), inbox_id in zip(batch, ids, strict=True):
                    if not fut.done():
                        fut.set_result(inbox_id)
            finally:  # the mail just stored is not held while the next one arrives (a 25 MB mail twice)
                first = nxt = batch = _ = None  # (``_``: the last item of the loops above)
