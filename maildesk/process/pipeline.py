"""Process accepted mail: read pending inbox rows, parse them, and apply each in its own savepoint.

A batch is read without a write lock and parsed outside any transaction (the CPU-heavy
part), then applied in one write transaction with one savepoint per message: a message
whose handling raises is rolled back alone and its inbox row marked ``failed`` with the
error (kept, retried by ``maildesk inbox retry``); the others commit together, so a
batch of N messages costs one fsync. Rows are re-checked under the write lock (and with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL) so two processes never handle the same row.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from maildesk.daemon.logsetup import bind
from maildesk.daemon.memtrim import TRIM_AFTER, trim
from maildesk.desk import Desk
from maildesk.parse.message import InboundMessage, parse
from maildesk.process.claim import InboxClaim
from maildesk.process.inbound import handle
from maildesk.process.outcome import Outcome
from maildesk.process.threadlock import defer_younger, lock_threads
from maildesk.storage.batch import Batch, Cut, Isolate
from maildesk.storage.models import InboxMail
from maildesk.storage.rawblob import read_raw
from maildesk.storage.writer import Writer

__all__ = ["ProcessResult", "process_pending", "retry_inbox"]

log = logging.getLogger("maildesk.pipeline")
# Longest a processing transaction keeps the database's write lock before committing
# (it commits sooner when the intake waits for the lock); how long decisions made without
# the lock may take before they are written; and the most messages one chunk looks at.
COMMIT_BUDGET = 0.06
DECIDE_BUDGET = 0.08
CHUNK_MAX = 64
PREFETCH = 8  # messages whose lookups are read ahead together
CLAIM_WINDOW = 8  # PostgreSQL: batches' worth of the oldest pending rows looked through for rows no other worker holds


@dataclass(frozen=True)
class ProcessResult:
    inbox_id: int
    status: str  # processed | duplicate | failed
    text: str
    ticket_id: int | None = None


def process_pending(desk: Desk, limit: int = 200, ids: list[int] | None = None, batched: bool = True,
                    max_bytes: int | None = None) -> list[ProcessResult]:
    """Process up to ``limit`` pending inbox rows (oldest first) holding at most ``max_bytes``
    of raw mail together (default ``[processing] batch_bytes``; the first row is taken
    whatever its size); returns what happened to each.
    ``batched=False``: each message in a savepoint of its own, its writes going out at once (the slow path, for comparison)."""
    with InboxClaim(desk.store) as claim:  # several instances: each parses only rows it holds (process.claim)
        return _process(desk, claim, limit, ids, batched, max_bytes)


def _process(desk: Desk, claim: InboxClaim, limit: int, ids: list[int] | None, batched: bool,
             max_bytes: int | None) -> list[ProcessResult]:
    cfg = desk.config
    budget = cfg.processing.batch_bytes if max_bytes is None else max_bytes
    with desk.store.read() as session:
        query = select(InboxMail.id, InboxMail.size).where(InboxMail.status == "pending")
        if ids is not None:
            query = query.where(InboxMail.id.in_(ids))
        # several workers: the oldest rows may be held by the others, so look further than one batch
        window = limit if desk.store.is_sqlite else limit * CLAIM_WINDOW
        sizes = session.execute(query.order_by(InboxMail.id).limit(window)).all()
    held = set(claim.take_first([row_id for row_id, _ in sizes], limit))
    sizes = [(row_id, size) for row_id, size in sizes if row_id in held]
    chosen = _within(sizes, budget)
    claim.give_back(sorted(held.difference(chosen)))
    if not chosen:
        return []
    with desk.store.read() as session:  # still pending: another worker may have finished one before the claim
        pending = session.execute(select(InboxMail.id, InboxMail.mail_from, InboxMail.rcpt_to, InboxMail.source, InboxMail.queue)
                                  .where(InboxMail.id.in_(chosen), InboxMail.status == "pending").order_by(InboxMail.id)).all()
    parsed: dict[int, InboundMessage] = {}
    for row_id, mail_from, rcpt_to, source, queue in pending:
        # one raw mail in memory at a time: read alone (never through the ORM, never with the
        # next one), parsed outside the read transaction, let go before the next is read
        with desk.store.read() as session:
            raw = read_raw(session, row_id)
        if raw is None:  # not stored (a database edited by hand): an empty message
            raw = b""
        parsed[row_id] = parse(raw, mail_from=mail_from, rcpt_to=tuple(rcpt_to or ()), source=source, queue=queue,
                               max_depth=cfg.mail.max_mime_depth, max_text=cfg.mail.max_text_kept,
                               max_addresses=cfg.mail.max_addresses_per_mail)
        del raw
    if not parsed:
        return []
    large = sum(size for row_id, size in sizes if row_id in parsed) >= TRIM_AFTER
    results: list[ProcessResult] = []
    todo = sorted(parsed)
    while todo:  # short write transactions, so accepting new mail never waits long for the lock
        chunk, last = _apply_chunk(desk, todo, parsed, batched)
        results.extend(chunk)
        todo = [i for i in todo if i > last]
    del parsed
    if large:
        trim()  # the freed pages of a large mail go back now (maildesk.daemon.memtrim)
    for res in results:
        with bind(inbox=res.inbox_id):
            if res.status == "failed":
                log.error("processing failed, kept for `maildesk inbox retry %d`: %s", res.inbox_id, res.text.splitlines()[-1])
            else:
                log.info("%s: %s", res.status, res.text)
    return results


def _within(rows, budget: int) -> list[int]:
    """The ids of ``rows`` (id, size), oldest first, while their sizes add up to at most
    ``budget`` bytes; the first is taken whatever its size."""
    chosen, total = [], 0
    for row_id, size in rows:
        total += size or 0
        if chosen and total > budget:
            break
        chosen.append(row_id)
    return chosen


def _apply_chunk(desk: Desk, ids: list[int], parsed: dict[int, InboundMessage],
                 batched: bool = True) -> tuple[list[ProcessResult], int]:
    """Apply pending rows among ``ids`` in id order, in one transaction, until COMMIT_BUDGET
    seconds have passed; returns the results and the highest id looked at.

    Batched (the default), the messages' writes are grouped (:mod:`maildesk.storage.batch`). If
    anything goes wrong there, the transaction is rolled back and the same rows are applied
    again one at a time, each in its own savepoint, so only a message that fails on its
    own is marked failed."""
    ids = ids[:CHUNK_MAX]
    try:
        done = _run_optimistic(desk, ids, parsed) if batched and desk.store.writer is not None else None
        out, last = done if done is not None else _run_chunk(desk, ids, parsed, batched)
    except Exception:
        desk.loads.forget()
        if not batched:
            raise
        # Not expected: a message that fails on its own is isolated below and marked failed; this
        # says that grouping them failed (a bug, or another instance writing the same rows).
        log.warning("batched processing of inbox %d-%d failed; applying them one at a time", ids[0], ids[-1], exc_info=True)
        out, last = _run_chunk(desk, ids, parsed, False)
    if any(r.status != "failed" for r in out):
        desk.wake("outbox")  # after the commit: the mail it queued can be claimed now
    return out, last


def _run_optimistic(desk: Desk, ids: list[int], parsed: dict[int, InboundMessage]) -> tuple[list[ProcessResult], int] | None:
    """Decide without the write lock, then take it only to write (SQLite).

    The messages are handled in a read transaction (a snapshot), their writes collected by
    a batch; then, under the write lock, the batch is written if the ``state`` revision is
    still the one the snapshot saw, that is if nothing processing reads has changed
    meanwhile (the intake and the outbox worker's routine writes leave it alone). So the
    listener's commits wait for a write of a few milliseconds, not for the decisions and
    the rendering of mail. Returns None, having written nothing, when the revision moved,
    or when the first message needs the ordinary path (it must run alone); the caller
    then applies the chunk under the lock as usual."""
    store = desk.store
    out: list[ProcessResult] = []
    started = time.monotonic()
    session = store.sessions()
    try:
        with session.begin():
            session.connection(execution_options={"sqlite_begin": "DEFERRED"})
            revision = store.state_revision(session)
            batch = Batch(session, desk.loads)
            with batch:
                rows = session.execute(_pending(ids)).all()
                window = timedelta(seconds=desk.config.mail.autoreply_window) + timedelta(minutes=5)
                for k, row in enumerate(rows):
                    if out and (time.monotonic() - started > DECIDE_BUDGET or store.priority_waiting()):
                        break  # a snapshot held long keeps the WAL from starting over (Store.checkpoint)
                    if k % PREFETCH == 0:  # what the next few messages look up, in a few queries
                        batch.prefetch([parsed[r.id] for r in rows[k:k + PREFETCH]], desk.clock() - window)
                    msg, now = parsed[row.id], desk.clock()
                    try:
                        outcome: Outcome = handle(batch, desk, row, msg, now)
                    except (Cut, Isolate):
                        break  # it starts the next chunk
                    batch.finished(row.id, _done(row, msg, outcome, now))
                    out.append(ProcessResult(row.id, outcome.status, outcome.text, outcome.ticket_id))
            batch.detach()
    finally:
        session.close()
    if not out:
        return None
    with store.transaction() as write:
        if store.state_revision(write) != revision:
            log.debug("the data changed while inbox %d-%d were decided; deciding them again under the lock",
                      out[0].inbox_id, out[-1].inbox_id)
            return None
        batch.write_into(write)
    batch.settle()
    return out, out[-1].inbox_id


def _pending(ids: list[int]):
    return (select(InboxMail.id, InboxMail.attempts)  # already parsed: never load the bytes twice
            .where(InboxMail.id.in_(ids), InboxMail.status == "pending").order_by(InboxMail.id))


def _run_chunk(desk: Desk, ids: list[int], parsed: dict[int, InboundMessage], batched: bool) -> tuple[list[ProcessResult], int]:
    out: list[ProcessResult] = []
    last = ids[-1]
    started = time.monotonic()
    with desk.store.transaction() as session:
        locked = _pending(ids)
        if not desk.store.is_sqlite:
            locked = locked.with_for_update(skip_locked=True)
        rows = session.execute(locked).all()
        if not desk.store.is_sqlite and desk.config.processing.serialize_threads:  # one thread at a time, in order (threadlock)
            rows, _later = defer_younger(session, rows, parsed)
            lock_threads(session, (parsed[r.id] for r in rows))
        # batched: the writes grouped (a Batch); else written at once, nothing kept count of the load changes
        writer = Batch(session, desk.loads) if batched else Writer(session, desk.loads)
        apply = _apply_batched if batched else _apply
        with writer:
            for row in rows:
                if out and (time.monotonic() - started > COMMIT_BUDGET or desk.store.priority_waiting()):
                    last = out[-1].inbox_id
                    break
                out.append(apply(writer, desk, row, parsed[row.id]))
            writer.flush()
    writer.settle()
    return out, last


def _apply_batched(batch: Batch, desk: Desk, row, msg: InboundMessage) -> ProcessResult:
    """``row``: the inbox row's (id, attempts)."""
    now = desk.clock()
    try:
        try:
            outcome: Outcome = handle(batch, desk, row, msg, now)
        except Cut:  # it reads what the batch holds: write that first; in a fresh batch it cannot cut again
            batch.flush()
            outcome = handle(batch, desk, row, msg, now)
    except Isolate:
        batch.flush()
        desk.loads.forget()  # e.g. an agent's #assign: counted afresh
        with batch.suspended() as writer:
            return _apply(writer, desk, row, msg)
    batch.finished(row.id, _done(row, msg, outcome, now))
    return ProcessResult(row.id, outcome.status, outcome.text, outcome.ticket_id)


def _apply(writer: Writer, desk: Desk, row, msg: InboundMessage) -> ProcessResult:
    """One message in its own savepoint, writes going out at once."""
    session = writer.session
    now = desk.clock()
    attempts = (row.attempts or 0) + 1
    savepoint = session.begin_nested()
    try:
        outcome: Outcome = handle(writer, desk, row, msg, now)
        savepoint.commit()
    except Exception as exc:  # per-message isolation: keep the message, record why, carry on
        savepoint.rollback()
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.debug("traceback for inbox %d:\n%s", row.id, traceback.format_exc())
        session.execute(update(InboxMail).where(InboxMail.id == row.id).values(
            status="failed", error=detail[:4000], processed_at=now, attempts=attempts, message_id=msg.message_id))
        return ProcessResult(row.id, "failed", detail)
    session.execute(update(InboxMail).where(InboxMail.id == row.id).values(**_done(row, msg, outcome, now)))
    return ProcessResult(row.id, outcome.status, outcome.text, outcome.ticket_id)


def _done(row, msg: InboundMessage, outcome: Outcome, now) -> dict:
    """The inbox row's new values once its message has been handled."""
    defects = f" [defects: {'; '.join(msg.defects)[:300]}]" if msg.defects else ""
    return {"status": outcome.status, "outcome": (outcome.text + defects)[:2000], "error": None,
            "ticket_id": outcome.ticket_id, "processed_at": now, "attempts": (row.attempts or 0) + 1,
            "message_id": msg.message_id}


def retry_inbox(session: Session, inbox_id: int | None = None) -> int:
    """Put failed rows (one, or all) back to pending."""
    stmt = update(InboxMail).where(InboxMail.status == "failed")
    if inbox_id is not None:
        stmt = stmt.where(InboxMail.id == inbox_id)
    return session.execute(stmt.values(status="pending", error=None)).rowcount or 0
