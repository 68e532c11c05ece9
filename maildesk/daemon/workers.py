"""Processing and delivery in processes of their own, so the listener keeps a core.

``maildesk run`` starts two children (``multiprocessing``, spawned): ``process`` runs the
pipeline, ``deliver`` the outbox and the scheduled jobs (:mod:`maildesk.daemon.scheduler`). Each loads the same config file and builds its own
desk, runs its step whenever woken (a shared Event set by the intake, the pipeline or the
scheduler) or every poll interval, and runs at a lower scheduling priority (nice) than the
listener, so a burst of mail is accepted first and processed as fast as the rest of the
machine allows; SQLite's write lock gives the listener's commits precedence too
(:mod:`maildesk.storage.store`). A child that dies is started again. A child exits when the daemon
stops (it finishes the step in progress first) and dies with it (Linux: PR_SET_PDEATHSIG;
elsewhere it notices its parent is gone within a second). The processing child looks
for edits of config/ before every step; SIGHUP to the daemon wakes it for one.

``[processing] processes = false`` runs the same steps as threads of the daemon instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable

from maildesk.daemon.memtrim import return_large_blocks

__all__ = ["STEPS", "ProcessWorker", "ThreadWorker"]

log = logging.getLogger("maildesk.daemon")
_SPAWN = multiprocessing.get_context("spawn")
NICE = 10  # how much lower than the listener the children run
# (name, config path, wake-ups) -> (the child's desk, its step, its started scheduler or None)
ChildBuilder = Callable[[str, str, dict], tuple]


# -- the steps (run in the child, or in a thread of the daemon) --------------------------
def process_step(desk) -> int:
    from maildesk.process.pipeline import process_pending

    return len(process_pending(desk, desk.config.processing.batch_size))


def deliver_step(desk, deliverer) -> int:
    from maildesk.outgoing.notices import send_notices
    from maildesk.outgoing.outbox import drain

    sent = drain(desk.store, deliverer, desk.config.outbound, desk.clock, suppress_days=desk.config.mail.suppress_days).total
    done = sent + send_notices(desk, limit=25)  # the agents' notifications processing decided on, after what is due
    desk.store.checkpoint()  # the daemon's commits leave the WAL to this worker (store.open_store)
    return done


STEPS = {"process": process_step, "deliver": deliver_step}


# -- in a thread of the daemon ----------------------------------------------------------
class ThreadWorker:
    """A loop that runs ``step`` in a thread whenever woken, or every ``interval`` seconds."""

    def __init__(self, name: str, step: Callable[[], int], interval: float):
        self.name, self.step, self.interval = name, step, interval
        self.event = asyncio.Event()
        self.stopping = False
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Thread-safe: may be called from the intake's writer thread."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.event.set)

    async def _run(self) -> None:
        failures = 0
        while not self.stopping:
            try:
                done = await asyncio.to_thread(self.step)
                failures = 0
            except Exception:
                failures += 1
                log.exception("%s failed (attempt %d); retrying", self.name, failures)
                done = 0
                await asyncio.sleep(min(60, 2 ** failures))
            if done and not self.stopping:
                continue  # more may be waiting
            self.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), self.interval)

    async def stop(self) -> None:
        self.stopping = True
        self.event.set()
        if self.task is not None:
            await self.task


# -- in a child process -------------------------------------------------------------------
class Wakeup:
    """A wake-up call across processes: a pipe with a byte in it. Setting it never blocks
    and never waits for the other side (a dead or busy child cannot stall the listener)."""

    def __init__(self):
        self._r, self._w = _SPAWN.Pipe(duplex=False)
        os.set_blocking(self._w.fileno(), False)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(self._w.fileno(), b"\0")

    def fileno(self) -> int:
        return self._r.fileno()

    def drain(self) -> None:
        os.set_blocking(self._r.fileno(), False)
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._r.fileno(), 4096):
                pass


class ProcessWorker:
    """The daemon's handle on one child process (started, woken, restarted, stopped)."""

    def __init__(self, name: str, config_path: str, wakeups: dict[str, Wakeup], interval: float, build: ChildBuilder):
        self.name, self.config_path, self.wakeups, self.interval = name, config_path, wakeups, interval
        self.build = build  # a module-level function: maildesk.daemon.build.build_child
        self.proc: multiprocessing.process.BaseProcess | None = None
        self.stopping = False
        self.task: asyncio.Task | None = None
        self.restarts = 0
        self._started = 0.0

    @staticmethod
    def shared_wakeups() -> dict[str, Wakeup]:
        """One wake-up call per child, known to every process of the daemon."""
        return {"process": Wakeup(), "deliver": Wakeup()}

    def start(self) -> None:
        self._spawn()
        self.task = asyncio.create_task(self._supervise(), name=f"{self.name}-supervisor")

    def _target(self) -> tuple[Callable, tuple]:
        """The child's entry point and its arguments."""
        return child_main, (self.name, self.config_path, self.wakeups, self.interval, os.getpid(), pickle.dumps(self.build))

    def _spawn(self) -> None:
        target, args = self._target()
        self.proc = _SPAWN.Process(target=target, name=f"maildesk-{self.name}", daemon=True, args=args)
        self.proc.start()
        self._started = time.monotonic()
        log.info("started the %s worker (pid %d)", self.name, self.proc.pid)

    def wake(self) -> None:
        self.wakeups[self.name].set()

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.pid and self.proc.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signum)

    async def _supervise(self) -> None:
        while not self.stopping:
            await asyncio.sleep(0.5)
            proc = self.proc
            if proc is None or proc.is_alive() or self.stopping:
                continue
            self.restarts = 1 if time.monotonic() - self._started > 60 else self.restarts + 1  # backoff for a crash loop only
            log.error("the %s worker (pid %s) exited with %s; starting it again", self.name, proc.pid, proc.exitcode)
            await asyncio.sleep(min(30, 2 ** min(self.restarts, 5) * 0.25))
            if not self.stopping:
                self._spawn()

    async def stop(self, timeout: float = 60) -> None:
        """Ask the child to finish its step and exit (SIGTERM); kill it after ``timeout`` seconds."""
        self.stopping = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        proc = self.proc
        if proc is None:
            return
        self.signal(signal.SIGTERM)
        await asyncio.to_thread(proc.join, timeout)
        if proc.is_alive():
            log.error("the %s worker did not stop within %ds; killing it", self.name, timeout)
            proc.kill()
            await asyncio.to_thread(proc.join, 5)


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the daemon dies (Linux); otherwise the loop polls getppid()."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


class _Flags:
    """What the signal handlers ask for; they only set attributes (and wake the select)."""

    stop = False


def child_main(name: str, config_path: str, wakeups: dict[str, Wakeup], interval: float, parent: int,
               build: bytes) -> None:
    """A child's whole life: build its desk, then run its step until told to stop.

    ``build`` is the pickled :data:`ChildBuilder`. It is unpickled (which imports the
    composition root, and with it most of maildesk) only after this child has tied its life
    to the daemon's and lowered its priority, as the spawned interpreter would not wait."""
    _die_with_parent(parent)
    return_large_blocks()
    with contextlib.suppress(OSError):
        os.nice(NICE)
    flags = _Flags()
    self_r, self_w = os.pipe()
    os.set_blocking(self_w, False)
    signal.set_wakeup_fd(self_w)  # a signal wakes the select below
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the daemon decides
    signal.signal(signal.SIGTERM, lambda *_: setattr(flags, "stop", True))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the daemon re-reads config/; this child looks before each step

    desk, step, scheduler = pickle.loads(build)(name, config_path, wakeups)
    _loop(name, desk, step, flags, wakeups[name], self_r, interval, parent)
    if scheduler is not None:
        scheduler.shutdown(wait=True)
    desk.store.dispose()


def _loop(name, desk, step, flags: _Flags, wake: Wakeup, self_r: int, interval: float, parent: int) -> None:
    failures = 0
    os.set_blocking(self_r, False)
    while not flags.stop:
        if os.getppid() != parent:
            log.error("the daemon is gone; the %s worker stops", name)
            return
        if name == "process":  # mail that arrived after an edit of config/ meets the edited rules
            try:
                desk.policy.poll(quiet=True)
            except Exception:
                log.exception("re-reading config/ failed; the previous rules stay in force")
        wake.drain()
        try:
            done = step()
            failures = 0
        except Exception:
            failures += 1
            log.exception("%s failed (attempt %d); retrying", name, failures)
            done = 0
            _wait([self_r], min(60, 2 ** failures))
        if not done and not flags.stop:
            _wait([wake.fileno(), self_r], min(interval, 1.0))
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(self_r, 4096)


def _wait(fds: list[int], timeout: float) -> None:
    with contextlib.suppress(InterruptedError, OSError):
        select.select(fds, [], [], timeout)
