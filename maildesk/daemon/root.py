"""The composition root: builds every concrete object and runs them.

``maildesk run``: on one asyncio loop, the intake writer (group commit), the SMTP/LMTP
listener, the IMAP sources and the scheduled jobs; processing and outbox delivery in a
child process each (:mod:`maildesk.daemon.workers`; threads with ``[processing] processes =
false``). SIGTERM/SIGINT stop the listener first (no new mail is accepted), let the intake
commit what it already holds (those sessions still get their 250), let the workers finish
the batch in progress, and exit. Anything not yet processed stays ``pending`` in the
database and is picked up at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from maildesk.config.load import Config
from maildesk.daemon.memtrim import return_large_blocks
from maildesk.daemon.metrics import serve as serve_metrics
from maildesk.daemon.scheduler import Scheduler
from maildesk.daemon.workers import STEPS, ProcessWorker, ThreadWorker
from maildesk.desk import Desk
from maildesk.ingest.intake import Intake
from maildesk.ingest.smtp import SmtpListener
from maildesk.outgoing.deliver import Deliverer, make_deliverer
from maildesk.outgoing.outbox import release_dead_claims
from maildesk.outgoing.render import Renderer
from maildesk.policy.files import Policy
from maildesk.policy.sync import sync_agents
from maildesk.storage.store import Store, store_for

__all__ = ["Daemon", "build_desk", "build_store", "make_deliverer_for", "sync_directory", "utcnow"]

log = logging.getLogger("maildesk.daemon")


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_store(config: Config, own_checkpoints: bool = False) -> Store:
    return store_for(config, own_checkpoints=own_checkpoints)


def build_desk(config: Config, store: Store | None = None, clock: Callable[[], datetime] = utcnow,
               own_checkpoints: bool = False) -> Desk:
    """``own_checkpoints``: for the daemon, whose delivery worker checkpoints SQLite's WAL."""
    store = store or build_store(config, own_checkpoints)
    renderer = Renderer(config.config_dir / "templates")
    policy = Policy(config.config_dir, renderer.names())
    return Desk(config=config, store=store, clock=clock, renderer=renderer, secret=config.mail.secret.reveal(), policy=policy)


def make_deliverer_for(config: Config) -> Deliverer:
    return make_deliverer(config.outbound, config.base_dir, config.mail.primary.split("@")[1])


def sync_directory(desk: Desk) -> None:
    """Agent rows in the database follow config/agents.toml."""
    with desk.store.transaction() as session:
        counts = sync_agents(session, desk.directory)
    if any(counts.values()):
        log.info("agents synced from agents.toml: %s", ", ".join(f"{v} {k}" for k, v in counts.items() if v))


class Daemon:
    def __init__(self, config: Config, *, desk: Desk | None = None, deliverer: Deliverer | None = None):
        self.config = config
        self.desk = desk or build_desk(config, own_checkpoints=True)
        # An injected desk or deliverer (tests) only exists here: the work runs in threads then.
        self.in_processes = config.processing.processes and desk is None and deliverer is None
        self.deliverer = deliverer or make_deliverer_for(config)
        self._stop = asyncio.Event()
        self._wakeups: dict | None = None

    def _reload_step(self) -> int:
        result = self.desk.policy.poll()
        if result.reloaded:
            sync_directory(self.desk)
        return 0

    def _workers(self) -> tuple:
        """The processing and delivery workers: child processes, or threads of this process."""
        if self.in_processes:
            wakeups = self._wakeups = ProcessWorker.shared_wakeups()
            return (ProcessWorker("process", str(self.config.path), wakeups, self.config.processing.poll_interval),
                    ProcessWorker("deliver", str(self.config.path), wakeups, self.config.outbound.poll_interval))
        return (ThreadWorker("processor", lambda: STEPS["process"](self.desk), self.config.processing.poll_interval),
                ThreadWorker("outbox", lambda: STEPS["deliver"](self.desk, self.deliverer), self.config.outbound.poll_interval))

    def _sources(self, intake: Intake) -> list:
        """Other mail sources besides the listener: objects with async start() and stop()."""
        # --- sources: IMAP mailboxes (maildesk/ingest/imap.py) ---
        if not self.config.imap:
            return []
        from maildesk.ingest.imap import ImapSource

        return [ImapSource(box, intake, clock=self.desk.clock) for box in self.config.imap]

    async def run(self, ready: Callable[[str, int], None] | None = None) -> None:
        # Threads share the interpreter with the listener: a short GIL switch interval keeps
        # the SMTP dialogue (on the event loop) answering promptly while they work.
        sys.setswitchinterval(0.001)
        return_large_blocks()  # a 25 MB mail's blocks go back to the system once freed (maildesk.daemon.memtrim)
        self.desk.store.check_schema()
        processor, outbox = self._workers()
        intake = Intake(self.desk.store, self.desk.clock, max_batch=self.config.smtp.commit_batch,
                        max_batch_bytes=self.config.smtp.commit_batch_bytes,
                        on_stored=processor.wake)
        listener = SmtpListener(self.config, intake) if self.config.smtp.enabled else None
        if listener is not None:
            await listener.bind()  # an address in use fails here, before any worker or job has started
        web_socket = None
        if self.config.web.enabled:  # [web] listen: the web view (maildesk/web/serve.py), bound here for the same reason
            from maildesk.web.serve import bind

            web_socket = bind(self.config)
        await asyncio.to_thread(release_dead_claims, self.desk.store)
        await asyncio.to_thread(sync_directory, self.desk)
        if not self.in_processes and self.desk.ruleset is not None and self.desk.ruleset.uses("language"):
            from maildesk.rules.language import warm_up

            await asyncio.to_thread(warm_up)  # not on the first message's time
        reload = ThreadWorker("reload", self._reload_step, 2.0)
        self.desk.wakeups.update(process=processor.wake, outbox=outbox.wake)
        await intake.start()
        processor.start()
        outbox.start()
        reload.start()
        # Outbox retries are due by time: the scheduler nudges the outbox worker, which also
        # wakes at once whenever processing queues new mail. The jobs themselves run in the
        # delivery worker when there is one, off the listener's process.
        scheduler = Scheduler(self.desk, extra={"outbox_retry": (self.config.outbound.poll_interval * 5, outbox.wake)},
                              jobs=not self.in_processes)
        scheduler.start()
        if listener is not None:
            host, port = await listener.start()
            log.info("listening for %s on %s:%d", "LMTP" if self.config.smtp.lmtp else "SMTP", host, port)
            if ready:
                ready(host, port)
        sources = self._sources(intake)
        for source in sources:
            await source.start()
        metrics = serve_metrics(self.config, self.desk.store, self.desk.clock)  # [metrics] listen; None when off
        web = None
        if web_socket is not None:
            from maildesk.web.serve import WebWorker

            web = WebWorker(str(self.config.path), self._wakeups, web_socket)
            web.start()
            log.info("web view at %s (listening on %s)", self.config.web.url, self.config.web.listen)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)

        def hangup() -> None:
            reload.wake()
            processor.wake()  # the processing worker re-reads config/ before each step

        loop.add_signal_handler(signal.SIGHUP, hangup)
        try:
            await self._stop.wait()
        finally:
            log.info("stopping: no new connections; committing what was accepted")
            if metrics is not None:
                metrics.shutdown()
            if web is not None:
                await web.stop(timeout=10)
                web_socket.close()
            if listener is not None:
                await listener.stop()
            for source in sources:
                await source.stop()
            await intake.stop()
            await processor.stop()
            await outbox.stop()
            scheduler.shutdown()
            await reload.stop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.desk.store.dispose()
            log.info("stopped cleanly")

    def request_stop(self) -> None:
        self._stop.set()
