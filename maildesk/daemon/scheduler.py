"""APScheduler runs the jobs of :mod:`maildesk.daemon.jobs`: in the delivery worker's process (a
thread of its own), or on the daemon's event loop when the work runs in threads.

Each job body runs in a worker thread (the database calls block) with the desk's clock;
a job that is still running when its next turn comes is skipped (``max_instances=1``,
``coalesce=True``), and a run missed while the daemon was down is not replayed: the job
bodies catch up from the tickets' state on their first run after start.

:func:`run_jobs` is ``maildesk jobs run``: the jobs once, as of any time. As of a time
ahead of the clock, the mail they queue is due now (not when the clock gets there);
``dry_run`` runs them on :meth:`maildesk.storage.store.Store.rolled_back` and reports the events
they would record and the mail they would queue, changing nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func as sql_func
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from maildesk.daemon.jobs import JOBS, Job
from maildesk.desk import Desk
from maildesk.parse.subjects import format_ref
from maildesk.storage.models import Event, JobRun, Outbox

__all__ = ["JobsRun", "Scheduler", "record_run", "run_job", "run_jobs"]

log = logging.getLogger("maildesk.jobs")


def record_run(desk: Desk, job: Job, at: datetime, result: str) -> None:
    """One upsert: several instances may record the same job in the same instant (no conflict error)."""
    values = {"name": job.name, "last_run_at": at, "next_run_at": at + timedelta(seconds=job.interval), "result": result[:1000]}
    insert = sqlite_insert if desk.store.is_sqlite else pg_insert
    stmt = insert(JobRun.__table__).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={k: stmt.excluded[k] for k in ("last_run_at", "next_run_at", "result")})
    with desk.store.transaction() as session:
        session.execute(stmt)


def run_job(desk: Desk, name: str, at: datetime | None = None) -> str:
    """Run one job once, as if the clock said ``at`` (default: the desk's clock). Mail queued
    by a run as of a time ahead of the clock is due now, not at that time; the run is
    recorded at the clock's time, its result naming the time it ran as of."""
    job = JOBS[name]
    real = desk.clock()
    now = at or real
    mark = _last_id(desk, Outbox) if now > real else None
    result = job.func(desk, now)
    if mark is not None:
        with desk.store.transaction(changes_state=False) as session:
            session.execute(update(Outbox).where(Outbox.id > mark, Outbox.next_attempt_at > real).values(next_attempt_at=real))
    record_run(desk, job, real, result if at is None else f"{result} (as of {now.isoformat()})")
    return result


def _last_id(desk: Desk, model) -> int:
    with desk.store.read() as session:
        return session.scalar(select(sql_func.max(model.id))) or 0


@dataclass
class JobsRun:
    """What ``jobs run`` did (or, ``dry_run``, would do): each job's result; for a dry run
    also one line per event it would record and per mail it would queue."""

    results: list[tuple[str, str]] = field(default_factory=list)
    dry_run: bool = False
    events: list[str] = field(default_factory=list)
    mails: list[str] = field(default_factory=list)


def run_jobs(desk: Desk, names: list[str], at: datetime | None = None, *, dry_run: bool = False,
             prepare: Callable[[Desk], None] | None = None) -> JobsRun:
    """Run ``names`` once as of ``at`` (:func:`run_job`), after ``prepare(desk)`` (the CLI
    syncs the agents). ``dry_run``: all of it in one transaction that is rolled back."""
    if not dry_run:
        if prepare is not None:
            prepare(desk)
        return JobsRun([(name, run_job(desk, name, at)) for name in names])
    report = JobsRun(dry_run=True)
    with desk.store.rolled_back() as store:
        dry = dataclasses.replace(desk, store=store, wakeups={})
        if prepare is not None:
            prepare(dry)
        marks = {model: _last_id(dry, model) for model in (Event, Outbox)}
        report.results = [(name, run_job(dry, name, at)) for name in names]
        prefix = desk.config.mail.ticket_prefix
        with store.read() as session:
            for e in session.scalars(select(Event).where(Event.id > marks[Event]).order_by(Event.id)):
                detail = ", ".join(f"{k}={v}" for k, v in (e.detail or {}).items())
                report.events.append(f"{_ref(prefix, e.ticket_id)} {e.kind}: {detail}"[:200])
            for o in session.scalars(select(Outbox).where(Outbox.id > marks[Outbox]).order_by(Outbox.id)):
                report.mails.append(f"{_ref(prefix, o.ticket_id)} {o.kind} to {', '.join(o.rcpt_to)}"[:200])
    return report


def _ref(prefix: str, ticket_id: int | None) -> str:
    return format_ref(prefix, ticket_id) if ticket_id is not None else "-"


class Scheduler:
    """``jobs=False``: only the ``extra`` callables (the daemon's own timers, when the jobs
    run in the delivery worker); ``background=True``: in a thread, for a process without an
    event loop."""

    def __init__(self, desk: Desk, extra: dict[str, tuple[float, object]] | None = None, *, jobs: bool = True,
                 background: bool = False):
        self.desk, self.with_jobs, self.background = desk, jobs, background
        self.scheduler = BackgroundScheduler(timezone=UTC) if background else AsyncIOScheduler(timezone=UTC)
        self.extra = extra or {}

    def start(self) -> None:
        first = datetime.now(UTC) + timedelta(seconds=1)  # catch up right after start
        for job in JOBS.values() if self.with_jobs else ():
            self.scheduler.add_job(self._run_sync if self.background else self._run, IntervalTrigger(seconds=job.interval),
                                   args=[job.name], id=job.name, name=job.help, next_run_time=first, max_instances=1,
                                   coalesce=True, misfire_grace_time=int(job.interval))
        for name, (interval, func) in self.extra.items():
            self.scheduler.add_job(func, IntervalTrigger(seconds=interval), id=name, max_instances=1, coalesce=True)
        self.scheduler.start()

    async def _run(self, name: str) -> None:
        await asyncio.to_thread(self._run_sync, name)

    def _run_sync(self, name: str) -> None:
        try:
            result = run_job(self.desk, name)
        except Exception:
            log.exception("job %s failed; it runs again at its next turn", name)
            return
        if not result.startswith("0 ") or ("," in result and any(c.isdigit() and c != "0" for c in result)):
            log.info("job %s: %s", name, result)

    def jobs(self) -> list[tuple[str, datetime | None]]:
        return [(j.id, j.next_run_time) for j in self.scheduler.get_jobs()]

    def shutdown(self, wait: bool = False) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
