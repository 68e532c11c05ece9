"""Render and queue the notifications that processing decided on (the delivery worker).

Processing records a :class:`~maildesk.storage.models.Notice` (who is to hear of what) in the
transaction of the change; :func:`send_notices` turns pending notices into outgoing mail.
It renders without the write lock, from a read snapshot, then writes the mail and marks
the notices done in one short transaction: a crash in between leaves them pending, so
every notice is mailed exactly once. Its history and ticket state are those at rendering
time, a few seconds after the event at most.
"""

from __future__ import annotations

import logging

from sqlalchemy import bindparam, select, update

from maildesk.desk import Desk
from maildesk.outgoing.notify import send_to_addresses, send_to_agents
from maildesk.storage.batch import Batch
from maildesk.storage.models import Notice, Ticket, TicketMessage
from maildesk.storage.writer import Writer
from maildesk.tickets.state import record

__all__ = ["send_notices"]

log = logging.getLogger("maildesk.deliver")
_PENDING = select(Notice).where(Notice.done_at.is_(None)).order_by(Notice.id).limit(bindparam("limit"))
_DONE = update(Notice).where(Notice.id.in_(bindparam("ids", expanding=True)), Notice.done_at.is_(None))


class _Taken(Exception):
    """Another worker mailed some of these notices first."""


def send_notices(desk: Desk, limit: int = 100) -> int:
    """Mail up to ``limit`` pending notices; returns how many were done. If rendering one
    of them fails, they are done one at a time, and one that fails on its own is dropped
    with an error in the log and a ``notification_failed`` event on its ticket."""
    try:
        return _send_batch(desk, limit)
    except Exception:
        log.debug("mailing notices together failed; one at a time", exc_info=True)
    done = 0
    for _ in range(limit):
        try:
            n = _send_batch(desk, 1)
        except Exception as exc:
            _drop_first(desk, exc)
            n = 1
        if not n:
            break
        done += n
    return done


def _drop_first(desk: Desk, exc: Exception) -> None:
    with desk.store.transaction() as session:
        notice = session.scalars(_PENDING, {"limit": 1}).first()
        if notice is None:
            return
        log.error("notification %s about ticket %d could not be rendered, dropped: %s: %s", notice.event,
                  notice.ticket_id, type(exc).__name__, exc)
        notice.done_at = desk.clock()
        record(Writer(session), notice.ticket_id, "system", "notification_failed", desk.clock(), event=notice.event,
               agents=notice.agents, addresses=notice.addresses, error=f"{type(exc).__name__}: {exc}"[:500])


def _send_batch(desk: Desk, limit: int) -> int:
    store = desk.store
    session = store.sessions()
    try:
        with session.begin():
            if store.is_sqlite:
                session.connection(execution_options={"sqlite_begin": "DEFERRED"})
            notices = list(session.scalars(_PENDING, {"limit": limit}))
            if not notices:
                return 0
            batch = Batch(session)
            with batch:
                for notice in notices:
                    _send(batch, desk, notice)
            batch.detach(keep=lambda o: not isinstance(o, Notice))  # notices are marked done by _DONE below
    finally:
        session.close()
    now = desk.clock()
    try:
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
