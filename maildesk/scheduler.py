"""APScheduler runs the jobs of :mod:`maildesk.jobs`: in the delivery worker's process (a
thread of its own), or on the daemon's event loop when the work runs in threads.

Each job body runs in a worker thread (the database calls block) with the desk's clock;
a job that is still running when its next turn comes is skipped (``max_instances=1``,
``coalesce=True``), and a run missed while the daemon was down is not replayed: the job
bodies catch up from the tickets' state on their first run after start.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from maildesk.desk import Desk
from maildesk.jobs import JOBS, Job
from maildesk.models import JobRun

__all__ = ["Scheduler", "record_run", "run_job"]

log = logging.getLogger("maildesk.jobs")


def record_run(desk: Desk, job: Job, at: datetime, result: str) -> None:
    with desk.store.transaction() as session:
        row = session.get(JobRun, job.name)
        nxt = at + timedelta(seconds=job.interval)
        if row is None:
            session.add(JobRun(name=job.name, last_run_at=at, next_run_at=nxt, result=result[:1000]))
        else:
            row.last_run_at, row.next_run_at, row.result = at, nxt, result[:1000]


def run_job(desk: Desk, name: str, at: datetime | None = None) -> str:
    """Run one job once, as if the clock said ``at`` (default: the desk's clock)."""
    job = JOBS[name]
    now = at or desk.clock()
    result = job.func(desk, now)
    record_run(desk, job, now, result)
    return result


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
