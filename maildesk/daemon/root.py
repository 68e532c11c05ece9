"""Runs the daemon: what :mod:`maildesk.daemon.build` (the composition root) builds.

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

from maildesk.config.load import Config
from maildesk.daemon.build import (
    build_desk,
    build_intake,
    build_listener,
    build_reload,
    build_scheduler,
    build_sources,
    build_workers,
    make_deliverer_for,
    sync_directory,
)
from maildesk.daemon.memtrim import return_large_blocks
from maildesk.daemon.metrics import serve as serve_metrics
from maildesk.desk import Desk
from maildesk.outgoing.deliver import Deliverer
from maildesk.outgoing.outbox import release_dead_claims

__all__ = ["Daemon"]

log = logging.getLogger("maildesk.daemon")


class Daemon:
    def __init__(self, config: Config, *, desk: Desk | None = None, deliverer: Deliverer | None = None):
        self.config = config
        self.desk = desk or build_desk(config, own_checkpoints=True)
        # An injected desk or deliverer (tests) only exists here: the work runs in threads then.
        self.in_processes = config.processing.processes and desk is None and deliverer is None
        self.deliverer = deliverer or make_deliverer_for(config)
        self._stop = asyncio.Event()

    async def run(self, ready: Callable[[str, int], None] | None = None) -> None:
        # Threads share the interpreter with the listener: a short GIL switch interval keeps
        # the SMTP dialogue (on the event loop) answering promptly while they work.
        sys.setswitchinterval(0.001)
        # Stop requests count from the first moment: a SIGTERM while the daemon is still
        # starting (its port may already be open) ends in a clean stop, not a killed process;
        # a SIGHUP before the reload is running is ignored.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        return_large_blocks()  # a 25 MB mail's blocks go back to the system once freed (maildesk.daemon.memtrim)
        self.desk.store.check_schema()
        processor, outbox = build_workers(self.config, self.desk, self.deliverer, self.in_processes)
        intake = build_intake(self.config, self.desk, on_stored=processor.wake)
        listener = build_listener(self.config, intake)
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
        reload = build_reload(self.desk)
        self.desk.wakeups.update(process=processor.wake, outbox=outbox.wake)
        await intake.start()
        processor.start()
        outbox.start()
        reload.start()
        scheduler = build_scheduler(self.config, self.desk, outbox.wake, self.in_processes)
        scheduler.start()
        if listener is not None:
            host, port = await listener.start()
            log.info("listening for %s on %s:%d", "LMTP" if self.config.smtp.lmtp else "SMTP", host, port)
            if ready:
                ready(host, port)
        sources = build_sources(self.config, self.desk, intake)
        for source in sources:
            await source.start()
        metrics = serve_metrics(self.config, self.desk.store, self.desk.clock)  # [metrics] listen; None when off
        web = None
        if web_socket is not None:
            from maildesk.web.serve import WebWorker

            web = WebWorker(str(self.config.path), processor.wakeups if self.in_processes else None, web_socket)
            web.start()
            log.info("web view at %s (listening on %s)", self.config.web.url, self.config.web.listen)
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
