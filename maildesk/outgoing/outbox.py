"""The durable outbox: rows written with the ticket change, delivered by a worker.

States: ``queued`` -> (claimed: ``sending``) -> ``sent`` | back to ``queued`` with
``next_attempt_at`` (exponential backoff) | ``failed`` (permanent, or too many tries)
| ``bounced`` (a DSN came back for it later). The bytes of a delivered mail are removed
``[outbound] keep_sent_days`` after delivery (:func:`purge_sent`); its row stays. A claim is a lease: a worker that died
while sending leaves a ``sending`` row whose lease runs out and is claimed again, so a
crash never forgets a mail. Delivery is at-least-once: each outcome is committed as soon
as the smarthost answers (``[outbound] record_every`` = 1, the default), so a crash (SIGKILL,
power loss) of a worker re-sends, with the same Message-ID, only the mail(s) whose 250 had
arrived but whose commit had not yet: at most ``record_every`` mails per delivery worker,
in a window of one commit (a few milliseconds). On PostgreSQL claims use ``FOR UPDATE SKIP
LOCKED`` so several instances share the work; see docs/scaling.md.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from maildesk.config.load import OutboundConfig
from maildesk.daemon.logsetup import redact
from maildesk.errors import PermanentDeliveryError, TemporaryDeliveryError
from maildesk.outgoing.deliver import Deliverer
from maildesk.process.autoreply import suppress
from maildesk.storage.models import Event, Outbox, OutboxBody
from maildesk.storage.store import Store
from maildesk.storage.writer import Writer

__all__ = ["INSTANCE", "DrainResult", "backoff", "drain", "enqueue", "purge_sent", "release_dead_claims", "retry"]

log = logging.getLogger("maildesk.deliver")
LEASE = timedelta(minutes=5)
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"


PURGE_CHUNK = 200  # bodies removed per transaction (short writes: the listener never waits long)
_PURGEABLE = (select(OutboxBody.message_id, func.length(OutboxBody.raw))
              .join(Outbox, Outbox.message_id == OutboxBody.message_id)
              .where(Outbox.status.in_(("sent", "bounced")), Outbox.sent_at < bindparam("before"))
              .limit(PURGE_CHUNK))


@dataclass
class DrainResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.failed


def enqueue(w: Writer, *, ticket_id: int | None, kind: str, raw: bytes, message_id: str,
            mail_from: str, rcpt_to: list[str], now: datetime) -> None:
    """Store a rendered mail for delivery, in the caller's transaction, and remember its Message-ID."""
    row = {"ticket_id": ticket_id, "kind": kind, "created_at": now, "mail_from": mail_from, "rcpt_to": rcpt_to,
           "message_id": message_id, "status": "queued", "attempts": 0, "next_attempt_at": now}
    body = {"message_id": message_id, "raw": raw}
    ref = {"message_id": message_id, "ticket_id": ticket_id, "direction": "out"} if ticket_id is not None else None
    w.enqueue(row, body, ref)


def backoff(attempts: int, cfg: OutboundConfig) -> timedelta:
    return timedelta(seconds=min(cfg.retry_base * (2 ** max(0, attempts - 1)), cfg.retry_max))


_DUE = (select(Outbox.id)
        .where(or_(Outbox.status == "queued", Outbox.status == "sending"), Outbox.next_attempt_at <= bindparam("now"),
               or_(Outbox.claimed_until.is_(None), Outbox.claimed_until < bindparam("now")))
        .order_by(Outbox.next_attempt_at, Outbox.id).limit(bindparam("limit")))
_CLAIMED = (select(Outbox.id, Outbox.ticket_id, Outbox.kind, Outbox.mail_from, Outbox.rcpt_to, OutboxBody.raw, Outbox.attempts)
            .join(OutboxBody, OutboxBody.message_id == Outbox.message_id)
            .where(Outbox.id.in_(bindparam("ids", expanding=True))).order_by(Outbox.next_attempt_at, Outbox.id))


def _claim(store: Store, now: datetime, limit: int) -> list:
    """Lease up to ``limit`` due mails to this worker: a short write (ids only), then the
    mails themselves read without the write lock."""
    with store.transaction(changes_state=False) as session:
        query = _DUE if store.is_sqlite else _DUE.with_for_update(skip_locked=True)
        ids = list(session.scalars(query, {"now": now, "limit": limit}))
        if ids:
            session.execute(update(Outbox).where(Outbox.id.in_(ids))
                            .values(status="sending", claimed_until=now + LEASE, claimed_by=INSTANCE))
    if not ids:
        return []
    with store.read() as session:
        return list(session.execute(_CLAIMED, {"ids": ids}))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (killed, not yet reaped: an init that reaps late) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()  # Linux; elsewhere kill(0) alone decides
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def release_dead_claims(store: Store) -> int:
    """Give back leases held by processes on this host that no longer run (a crash, SIGKILL),
    so their mail goes out now instead of when the lease expires. Leases of other hosts expire."""
    host = socket.gethostname()
    released = 0
    with store.transaction() as session:
        for row in session.scalars(select(Outbox).where(Outbox.status == "sending", Outbox.claimed_by.is_not(None))):
            owner_host, _, pid = (row.claimed_by or "").rpartition(":")
            if owner_host == host and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                row.status, row.claimed_until, row.claimed_by = "queued", None, None
                released += 1
    if released:
        log.warning("released %d outgoing mail(s) claimed by a worker that died; sending them now", released)
    return released


def drain(store: Store, deliverer: Deliverer, cfg: OutboundConfig, clock: Callable[[], datetime],
          limit: int = 50, suppress_days: int = 30) -> DrainResult:
    """Deliver what is due once, over one kept session. Outcomes are committed every
    ``cfg.record_every`` mails (default: each one as soon as the smarthost answers), so a
    crash inside a batch re-sends only what was accepted but not yet recorded.
    Returns how many were sent, put back for retry, or failed."""
    result = DrainResult()
    outcomes: list[tuple[Outbox, str, str, int]] = []
    every = max(1, getattr(cfg, "record_every", 1))
    try:
        for row in _claim(store, clock(), limit):
            try:
                answer = deliverer.send(row.mail_from, list(row.rcpt_to), row.raw)
            except PermanentDeliveryError as exc:
                outcomes.append((row, "failed", str(exc), suppress_days))
                result.failed += 1
            except TemporaryDeliveryError as exc:
                status = "failed" if row.attempts + 1 >= cfg.max_attempts else "queued"
                outcomes.append((row, status, str(exc), 0))
                if status == "failed":
                    result.failed += 1
                else:
                    result.retried += 1
            else:
                outcomes.append((row, "sent", answer, 0))
                result.sent += 1
            if len(outcomes) >= every:
                _record(store, outcomes, clock(), cfg)
                outcomes = []
    finally:
        deliverer.close()
        if outcomes:
            _record(store, outcomes, clock(), cfg)
    return result


def _record(store: Store, outcomes: list[tuple], now: datetime, cfg: OutboundConfig) -> None:
    """The outcomes of some delivered mails in one short transaction: every mail sent in one
    UPDATE, the rest (deferred, failed) one by one; the log lines after the commit."""
    sent = [row.id for row, status, _, _ in outcomes if status == "sent"]
    others = [o for o in outcomes if o[1] != "sent"]
    failed = any(status == "failed" for _, status, _, _ in others)  # events and suppressions
    with store.transaction(changes_state=failed) as session:
        if sent:  # only the holder of a claim may finish it (another instance may have reclaimed an expired lease)
            session.execute(update(Outbox).where(Outbox.id.in_(sent), Outbox.status == "sending").values(
                status="sent", attempts=Outbox.attempts + 1, claimed_until=None, claimed_by=None, sent_at=now,
                last_error=None))
        for row, status, detail, days in others:
            _finish(session, row, now, status, detail, cfg, days)
    for row, status, detail, _ in outcomes:
        if status == "sent":
            log.info("sent outbox=%d %s to %s: %s", row.id, row.kind, redact(", ".join(row.rcpt_to)), detail)


def _finish(session: Session, row: Outbox, now: datetime, status: str, detail: str, cfg: OutboundConfig,
            suppress_days: int) -> None:
    """Record one outcome; ``suppress_days`` > 0 means a permanent failure that stops
    further automatic mail to the recipients for that long."""
    attempts = row.attempts + 1
    values = {"status": status, "attempts": attempts, "claimed_until": None, "claimed_by": None}
    if status == "queued":
        values.update(last_error=detail, next_attempt_at=now + backoff(attempts, cfg))
        log.warning("outbox=%d delivery deferred (attempt %d): %s", row.id, attempts, detail)
    else:
        values.update(last_error=detail)
        log.error("outbox=%d delivery failed for good after %d attempt(s): %s", row.id, attempts, detail)
        if row.ticket_id is not None:
            session.add(Event(ticket_id=row.ticket_id, at=now, actor="system", kind="delivery_failed",
                              detail={"outbox": row.id, "kind": row.kind, "to": list(row.rcpt_to), "error": detail[:1000]}))
        if suppress_days > 0:
            for rcpt in row.rcpt_to:
                suppress(session, rcpt, now + timedelta(days=suppress_days), f"delivery failed: {detail[:200]}")
    # Only the holder of the claim may finish it (another instance may have reclaimed an expired lease).
    session.execute(update(Outbox).where(Outbox.id == row.id, Outbox.status == "sending").values(**values))


def retry(session: Session, now: datetime, outbox_id: int | None = None) -> int:
    """Put failed rows (one, or all) back in the queue for immediate delivery."""
    stmt = update(Outbox).where(Outbox.status == "failed")
    if outbox_id is not None:
        stmt = stmt.where(Outbox.id == outbox_id)
    res = session.execute(stmt.values(status="queued", next_attempt_at=now, claimed_until=None, attempts=0))
    return res.rowcount or 0


def purge_sent(store: Store, before: datetime) -> tuple[int, int]:
    """Remove the bytes of mail delivered before ``before`` (``[outbound] keep_sent_days``):
    the outbox row stays, with its envelope and Message-ID (replies still thread by it), as
    does the Message-ID in ``message_refs``. Returns (bodies removed, their bytes)."""
    removed = size = 0
    while True:
        with store.transaction(changes_state=False) as session:
            rows = session.execute(_PURGEABLE, {"before": before}).all()
            if rows:
                session.execute(delete(OutboxBody).where(OutboxBody.message_id.in_([r[0] for r in rows])))
        removed += len(rows)
        size += sum(r[1] or 0 for r in rows)
        if len(rows) < PURGE_CHUNK:
            return removed, size
