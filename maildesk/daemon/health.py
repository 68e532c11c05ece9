"""An instance's liveness and the cluster's backlog, for ``maildesk status`` and the
Prometheus metrics (:mod:`maildesk.daemon.metrics`).

The backlog is read from the database, so it is the same seen from every instance: mail
accepted and not yet processed (inbox ``pending``), outgoing mail not yet delivered (outbox
``queued``/``sending``), how old the oldest of each is, agent notifications not yet
rendered (notices ``pending``) or kept as ``failed``, and when each scheduled job last ran.
Liveness is this instance's own: whether its SMTP listener answers with a 220.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from sqlalchemy import func, select

from maildesk.config.load import Config
from maildesk.storage.models import InboxMail, JobRun, Notice, Outbox
from maildesk.storage.store import Store

__all__ = ["backlog", "listener_up", "status"]


def _age(now: datetime, then: datetime | None) -> float | None:
    if then is None:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return round(max(0.0, (now - then).total_seconds()), 3)


def backlog(store: Store, now: datetime) -> dict:
    """Counts and ages of the inbox and the outbox, notices not done, and the last run of each job."""
    with store.read() as session:
        inbox = dict(session.execute(select(InboxMail.status, func.count()).where(InboxMail.status.in_(("pending", "failed")))
                                     .group_by(InboxMail.status)).all())
        oldest_in = session.scalar(select(func.min(InboxMail.received_at)).where(InboxMail.status == "pending"))
        outbox = dict(session.execute(select(Outbox.status, func.count())
                                      .where(Outbox.status.in_(("queued", "sending", "failed"))).group_by(Outbox.status)).all())
        oldest_out = session.scalar(select(func.min(Outbox.created_at)).where(Outbox.status.in_(("queued", "sending"))))
        notices = dict(session.execute(select(Notice.status, func.count()).where(Notice.done_at.is_(None))
                                       .group_by(Notice.status)).all())
        jobs = [{"name": r.name, "last_run_at": r.last_run_at.isoformat() if r.last_run_at else None,
                 "last_run_age_seconds": _age(now, r.last_run_at), "result": r.result}
                for r in session.scalars(select(JobRun).order_by(JobRun.name))]
    return {"inbox_pending": inbox.get("pending", 0), "inbox_failed": inbox.get("failed", 0),
            "inbox_oldest_pending_age_seconds": _age(now, oldest_in),
            "outbox_queued": outbox.get("queued", 0), "outbox_sending": outbox.get("sending", 0), "outbox_failed": outbox.get("failed", 0),
            "outbox_oldest_queued_age_seconds": _age(now, oldest_out),
            "notices_pending": notices.get("pending", 0), "notices_failed": notices.get("failed", 0), "jobs": jobs}


def listener_up(config: Config, timeout: float = 3.0) -> bool:
    """Whether this instance's SMTP listener accepts a connection and greets with 220."""
    host = config.smtp.host if config.smtp.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    try:
        with socket.create_connection((host, config.smtp.port), timeout=timeout) as s:
            return s.recv(3) == b"220"
    except OSError:
        return False


def status(config: Config, store: Store, now: datetime) -> dict:
    return {"listener": {"address": f"{config.smtp.host}:{config.smtp.port}",
                         "up": listener_up(config) if config.smtp.enabled else None},
            "at": now.isoformat(), **backlog(store, now)}
