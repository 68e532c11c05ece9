"""The services every stage needs, built once by the composition root (daemon.build.build_desk)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maildesk.config.load import Config
from maildesk.outgoing.mailer import MailContext
from maildesk.outgoing.render import Renderer
from maildesk.storage.loads import AgentLoads
from maildesk.storage.store import Store

__all__ = ["Desk", "loop_id_for"]


def loop_id_for(secret: str, address: str) -> str:
    """A stable id for this installation, the same on every instance sharing the secret."""
    return hashlib.sha256(f"maildesk-loop:{secret}:{address.lower()}".encode()).hexdigest()[:20]


@dataclass
class Desk:
    config: Config
    store: Store
    clock: Callable[[], datetime]
    renderer: Renderer
    secret: str
    # The admin's files in config/ (agents.toml, rules.toml, sla.toml), reloaded on change.
    policy: Any = None
    wakeups: dict[str, Callable[[], None]] = field(default_factory=dict)
    # Open tickets per agent for assignment, kept up to date by processing (maildesk.storage.loads).
    loads: AgentLoads = field(default_factory=AgentLoads)
    # True in the daemon's processing worker: agent notifications are recorded as notices and
    # rendered by the delivery worker (maildesk.outgoing.notices); False renders them at once.
    notices_later: bool = False

    @property
    def directory(self):
        return self.policy.directory if self.policy is not None else None

    @property
    def ruleset(self):
        return self.policy.ruleset if self.policy is not None else None

    @property
    def sla(self):
        return self.policy.sla if self.policy is not None else None

    @property
    def loop_id(self) -> str:
        return loop_id_for(self.secret, self.config.mail.primary)

    @property
    def mail(self) -> MailContext:
        m = self.config.mail
        return MailContext(self.renderer, self.secret, m.addresses, m.support_name, m.ticket_prefix, self.loop_id,
                           self.config.outbound.alternative_max)

    def wake(self, name: str) -> None:
        fn = self.wakeups.get(name)
        if fn is not None:
            fn()
