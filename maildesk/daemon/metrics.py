"""Prometheus metrics of one instance on ``[metrics] listen`` (off by default).

Each scrape reads the backlog from the database (:func:`maildesk.daemon.health.backlog`: a few
aggregate queries), so the figures are current and the same on every instance of a
cluster; ``maildesk_listener_up`` is this instance's own SMTP listener. The HTTP server is
prometheus-client's, in a thread of the daemon's main process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily

from maildesk.config.load import Config
from maildesk.daemon.health import backlog, listener_up
from maildesk.errors import ConfigError
from maildesk.storage.store import Store

__all__ = ["BacklogCollector", "serve"]

log = logging.getLogger("maildesk.metrics")
_GAUGES = (("inbox_pending", "accepted mail not yet processed"), ("inbox_failed", "mail whose processing failed (maildesk inbox retry)"),
           ("inbox_oldest_pending_age_seconds", "age of the oldest unprocessed mail (0: none)"),
           ("outbox_queued", "outgoing mail waiting for delivery"), ("outbox_sending", "outgoing mail claimed by a delivery worker"),
           ("outbox_failed", "outgoing mail that failed for good"),
           ("outbox_oldest_queued_age_seconds", "age of the oldest undelivered outgoing mail (0: none)"),
           ("notices_pending", "agent notifications not rendered yet (some may wait for a retry)"),
           ("notices_failed", "agent notifications that failed for good (maildesk notices retry)"))


class BacklogCollector:
    def __init__(self, config: Config, store: Store, clock: Callable[[], datetime]):
        self.config, self.store, self.clock = config, store, clock

    def collect(self):
        up = GaugeMetricFamily("maildesk_listener_up", "1 when this instance's SMTP listener greets with 220")
        up.add_metric([], 1.0 if self.config.smtp.enabled and listener_up(self.config, timeout=1.0) else 0.0)
        yield up
        try:
            data = backlog(self.store, self.clock())
        except Exception as exc:  # the database is down: say so instead of failing the scrape
            log.warning("metrics: could not read the backlog: %s", exc)
            db = GaugeMetricFamily("maildesk_database_up", "1 when the backlog could be read from the database")
            db.add_metric([], 0.0)
            yield db
            return
        db = GaugeMetricFamily("maildesk_database_up", "1 when the backlog could be read from the database")
        db.add_metric([], 1.0)
        yield db
        for key, text in _GAUGES:
            g = GaugeMetricFamily(f"maildesk_{key}", text)
            g.add_metric([], float(data[key] or 0))
            yield g
        last = GaugeMetricFamily("maildesk_job_last_run_age_seconds", "seconds since each scheduled job last ran", labels=["job"])
        for job in data["jobs"]:
            if job["last_run_age_seconds"] is not None:
                last.add_metric([job["name"]], job["last_run_age_seconds"])
        yield last


def serve(config: Config, store: Store, clock: Callable[[], datetime]):
    """Start the metrics listener when ``[metrics] listen`` is set; returns the server (or None)."""
    address = config.metrics.address
    if address is None:
        return None
    registry = CollectorRegistry()
    registry.register(BacklogCollector(config, store, clock))
    try:
        server, _thread = start_http_server(address[1], addr=address[0], registry=registry)
    except OSError as exc:
        raise ConfigError(str(config.path), "[metrics] listen",
                          f"cannot listen on {config.metrics.listen}: {exc.strerror or exc}; choose a free address or remove the key") from exc
    log.info("Prometheus metrics on http://%s:%d/metrics", *address)
    return server
