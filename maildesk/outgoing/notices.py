"""Render and queue the notifications that processing decided on (the delivery worker).

Processing records a :class:`~maildesk.storage.models.Notice` (who is to hear of what) in the
transaction of the change; :func:`send_notices` turns due notices into outgoing mail.
It renders without the write lock, from a read snapshot, then writes the mail and marks
the notices done in one short transaction: a crash in between leaves them pending, so
every notice is mailed exactly once. Its history and ticket state are those at rendering
time, a few seconds after the event at most.

A notice that cannot be rendered or queued (a broken template in ``config/templates``,
the database busy) stays ``pending`` with its error and is tried again after an
exponential backoff (``[outbound] retry_base``, ``retry_max``, as outgoing mail); after
``[outbound] notice_max_attempts`` it is kept as ``failed``, with a ``notification_failed``
event on its ticket, until ``maildesk notices retry`` (:func:`retry`) queues it again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from maildesk.desk import Desk
from maildesk.outgoing.notify import send_to_addresses, send_to_agents
from maildesk.outgoing.outbox import backoff
from maildesk.storage.batch import Batch
from maildesk.storage.models import Notice, Ticket, TicketMessage
from maildesk.storage.writer import Writer
from maildesk.tickets.state import record

__all__ = ["retry", "send_notices"]

log = logging.getLogger("maildesk.deliver")
_DUE = (select(Notice).where(Notice.done_at.is_(None), Notice.status == "pending", Notice.next_attempt_at <= bindparam("now"),
                             Notice.id.not_in(bindparam("skip", expanding=True)))
        .order_by(Notice.id).limit(bindparam("limit")))
_DONE = update(Notice).where(Notice.id.in_(bindparam("ids", expanding=True)), Notice.done_at.is_(None),
                             Notice.status == "pending")


class _Taken(Exception):
    """Another worker mailed some of these notices first."""


class _Failed(Exception):
    """Rendering or queueing the notices taken failed (``error``, the cause)."""

    def __init__(self, ids: list[int], error: Exception):
        super().__init__(f"notices {ids}: {type(error).__name__}: {error}")
        self.ids, self.error = ids, error


def send_notices(desk: Desk, limit: int = 100) -> int:
    """Mail up to ``limit`` due notices; returns how many were mailed. If rendering them
    together fails, they are done one at a time, and one that fails on its own is put back
    for a later attempt (a warning in the log), or kept as ``failed`` after
    ``[outbound] notice_max_attempts``, with a ``notification_failed`` event on its ticket."""
    try:
        return _send_batch(desk, limit)
    except Exception:
        log.debug("mailing notices together failed; one at a time", exc_info=True)
    done = 0
    failed: list[int] = []  # not taken again in this call, whatever the backoff
    for _ in range(limit):
        try:
            n = _send_batch(desk, 1, failed)
        except _Failed as exc:
            _failed(desk, exc.ids[0], exc.error)
            failed.append(exc.ids[0])
            continue
        if not n:
            break
        done += n
    return done


def _failed(desk: Desk, notice_id: int, exc: Exception) -> None:
    """One failed attempt at a notice: due again after the backoff, or failed for good."""
    cfg = desk.config.outbound
    now = desk.clock()
    error = f"{type(exc).__name__}: {exc}"[:1000]
    with desk.store.transaction() as session:
        notice = session.get(Notice, notice_id)
        if notice is None or notice.done_at is not None or notice.status != "pending":
            return
        notice.attempts += 1
        notice.last_error = error
        final = notice.attempts >= cfg.notice_max_attempts
        if final:
            notice.status = "failed"
            record(Writer(session), notice.ticket_id, "system", "notification_failed", now, notice=notice.id, event=notice.event,
                   agents=notice.agents, addresses=notice.addresses, attempts=notice.attempts, error=error[:500])
        else:
            notice.next_attempt_at = now + backoff(notice.attempts, cfg)
        what, attempts, ticket_id, due = notice.event, notice.attempts, notice.ticket_id, notice.next_attempt_at
    if final:
        log.error("notice %d (%s about ticket %d) failed for good after %d attempt(s), kept as failed: %s; fix the cause "
                  "(a template in config/templates?), then `maildesk notices retry %d` mails it",
                  notice_id, what, ticket_id, attempts, error, notice_id)
    else:
        log.warning("notice %d (%s about ticket %d) could not be rendered (attempt %d of %d), tried again at %s: %s",
                    notice_id, what, ticket_id, attempts, cfg.notice_max_attempts, due.isoformat(timespec="seconds"), error)


def retry(session: Session, now: datetime, notice_id: int | None = None) -> int:
    """Make failed notices (one, or all) due again now, with their attempts counted anew."""
    stmt = update(Notice).where(Notice.status == "failed", Notice.done_at.is_(None))
    if notice_id is not None:
        stmt = stmt.where(Notice.id == notice_id)
    return session.execute(stmt.values(status="pending", attempts=0, next_attempt_at=now)).rowcount or 0


def _send_batch(desk: Desk, limit: int, skip: list[int] = ()) -> int:
    """Mail up to ``limit`` due notices (not those in ``skip``) together; raises
    :class:`_Failed` naming them when rendering or queueing them fails."""
    store = desk.store
    session = store.sessions()
    notices: list[Notice] = []
    try:
        with session.begin():
            if store.is_sqlite:
                session.connection(execution_options={"sqlite_begin": "DEFERRED"})
            notices = list(session.scalars(_DUE, {"now": desk.clock(), "skip": list(skip), "limit": limit}))
            if not notices:
                return 0
            batch = Batch(session)
            with batch:
                for notice in notices:
                    _send(batch, desk, notice)
            batch.detach(keep=lambda o: not isinstance(o, Notice))  # notices are marked done by _DONE below
        now = desk.clock()
        # Outgoing mail and its Message-IDs only: nothing processing decides on before the
        # mail was delivered (a reply to it arrives after this commit), so the state revision stays.
        with store.transaction(changes_state=False) as write:
            taken = write.execute(_DONE.values(done_at=now), {"ids": [n.id for n in notices]}).rowcount
            if taken != len(notices):
                raise _Taken
            batch.write_into(write)
    except _Taken:
        log.debug("notices %d-%d were mailed by another worker", notices[0].id, notices[-1].id)
        return 0
    except Exception as exc:
        if not notices:
            raise  # nothing taken yet: the database itself (the worker tries again)
        raise _Failed([n.id for n in notices], exc) from exc
    finally:
        session.close()
    desk.wake("outbox")
    return len(notices)


def _send(w: Writer, desk: Desk, notice: Notice) -> None:
    session = w.session
    ticket = session.get(Ticket, notice.ticket_id)
    message = session.get(TicketMessage, notice.message_id) if notice.message_id else None
    if ticket is None:
        return
    now = desk.clock()
    if notice.agents and desk.directory is not None:
        agents = [a for a in (desk.directory.agent(login) for login in notice.agents) if a is not None]
        if agents:
            send_to_agents(w, desk, ticket, notice.event, now, message, agents, notice.actor, notice.template,
                           notice.extra)
    if notice.addresses:
        send_to_addresses(w, desk, ticket, notice.addresses, notice.event, now, message, notice.template,
                          notice.extra)
