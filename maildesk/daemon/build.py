"""The composition root: the one place that builds concrete objects.

The desk (config, store, renderer, the admin's files), the deliverer, the intake, the
SMTP/LMTP listener, the IMAP sources, the scheduler and the workers are built here and
nowhere else; :mod:`maildesk.daemon.root` runs what this module builds, the worker
children (:mod:`maildesk.daemon.workers`) build their own desk through
:func:`build_child`, and the command line builds a desk with :func:`build_desk`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from maildesk.config.load import Config, load_config
from maildesk.daemon.logsetup import configure
from maildesk.daemon.scheduler import Scheduler
from maildesk.daemon.workers import STEPS, ProcessWorker, ThreadWorker, Wakeup
from maildesk.desk import Desk
from maildesk.ingest.intake import Intake
from maildesk.ingest.smtp import SmtpListener
from maildesk.outgoing.deliver import Deliverer, make_deliverer
from maildesk.outgoing.render import Renderer
from maildesk.policy.files import PolicyFiles
from maildesk.policy.sync import sync_agents
from maildesk.storage.store import Store, store_for

__all__ = [
    "build_child",
    "build_desk",
    "build_intake",
    "build_listener",
    "build_reload",
    "build_scheduler",
    "build_sources",
    "build_store",
    "build_workers",
    "make_deliverer_for",
    "sync_directory",
    "utcnow",
]

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
    policy = PolicyFiles(config.config_dir, renderer.names())
    return Desk(config=config, store=store, clock=clock, renderer=renderer, secret=config.mail.secret.reveal(), policy=policy)


def make_deliverer_for(config: Config) -> Deliverer:
    return make_deliverer(config.outbound, config.base_dir, config.mail.primary.split("@")[1])


def sync_directory(desk: Desk) -> None:
    """Agent rows in the database follow config/agents.toml."""
    with desk.store.transaction() as session:
        counts = sync_agents(session, desk.directory)
    if any(counts.values()):
        log.info("agents synced from agents.toml: %s", ", ".join(f"{v} {k}" for k, v in counts.items() if v))


# -- what ``maildesk run`` runs (maildesk.daemon.root) -----------------------------------
def build_workers(config: Config, desk: Desk, deliverer: Deliverer, in_processes: bool) -> tuple:
    """The processing and delivery workers: child processes, or threads of this process."""
    if in_processes:
        wakeups = ProcessWorker.shared_wakeups()
        return (ProcessWorker("process", str(config.path), wakeups, config.processing.poll_interval, build_child),
                ProcessWorker("deliver", str(config.path), wakeups, config.outbound.poll_interval, build_child))
    return (ThreadWorker("processor", lambda: STEPS["process"](desk), config.processing.poll_interval),
            ThreadWorker("outbox", lambda: STEPS["deliver"](desk, deliverer), config.outbound.poll_interval))


def build_reload(desk: Desk) -> ThreadWorker:
    """The thread that re-reads config/ every two seconds (and on SIGHUP)."""

    def step() -> int:
        result = desk.policy.poll()
        if result.reloaded:
            sync_directory(desk)
        return 0

    return ThreadWorker("reload", step, 2.0)


def build_intake(config: Config, desk: Desk, on_stored: Callable[[], None]) -> Intake:
    return Intake(desk.store, desk.clock, max_batch=config.smtp.commit_batch, max_batch_bytes=config.smtp.commit_batch_bytes,
                  on_stored=on_stored)


def build_listener(config: Config, intake: Intake) -> SmtpListener | None:
    """The SMTP/LMTP listener; None with ``[smtp] enabled = false``."""
    return SmtpListener(config, intake) if config.smtp.enabled else None


def build_sources(config: Config, desk: Desk, intake: Intake) -> list:
    """Other mail sources besides the listener: objects with async start() and stop()."""
    # --- sources: IMAP mailboxes (maildesk/ingest/imap.py) ---
    if not config.imap:
        return []
    from maildesk.ingest.imap import ImapSource  # only an installation that fetches over IMAP loads it

    return [ImapSource(box, intake, clock=desk.clock) for box in config.imap]


def build_scheduler(config: Config, desk: Desk, outbox_wake: Callable[[], None], in_processes: bool) -> Scheduler:
    """Outbox retries are due by time: the scheduler nudges the outbox worker, which also
    wakes at once whenever processing queues new mail. The jobs themselves run in the
    delivery worker when there is one, off the listener's process."""
    return Scheduler(desk, extra={"outbox_retry": (config.outbound.poll_interval * 5, outbox_wake)}, jobs=not in_processes)


# -- what a worker child runs (maildesk.daemon.workers.child_main) ------------------------
def build_child(name: str, config_path: str, wakeups: dict[str, Wakeup]) -> tuple[Desk, Callable[[], int], Scheduler | None]:
    """A worker child's own desk, the step it runs, and (the delivery worker) its started scheduler."""
    config = load_config(config_path)
    configure(config.log.level, config.log.redact_addresses)
    desk = build_desk(config, own_checkpoints=True)
    desk.wakeups.update(process=wakeups["process"].set, outbox=wakeups["deliver"].set)
    if name == "process":
        desk.notices_later = True  # the delivery worker renders the agents' notifications
        if desk.ruleset is not None and desk.ruleset.uses("language"):
            from maildesk.rules.language import warm_up

            warm_up()
        return desk, lambda: STEPS["process"](desk), None
    # the delivery worker also runs the scheduled jobs (SLA, reminders, housekeeping)
    deliverer = make_deliverer_for(config)
    scheduler = Scheduler(desk, background=True)
    scheduler.start()
    return desk, lambda: STEPS["deliver"](desk, deliverer), scheduler
