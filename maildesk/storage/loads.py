"""Open tickets per agent, counted for assignment and kept up to date by processing."""

from __future__ import annotations

import time
from collections import Counter

from sqlalchemy.orm import Session

__all__ = ["AgentLoads"]


class AgentLoads:
    """Open tickets per agent login, as committed: counting them is a scan of every open
    ticket, so the count is read from the database at most every ``max_age`` seconds and
    the batches this process commits are added to it in between. Changes made elsewhere
    (the scheduler, the CLI, another instance) show up within ``max_age``; capacity and
    least-loaded decisions are at most that stale."""

    def __init__(self, max_age: float = 5.0):
        self.max_age = max_age
        self._committed: Counter | None = None
        self._read_at = 0.0

    def current(self, session: Session, query, pending: Counter) -> Counter:
        """The committed count plus ``pending`` (changes flushed, not yet committed, in ``session``'s transaction)."""
        now = time.monotonic()
        if self._committed is None or now - self._read_at > self.max_age:
            seen = Counter(dict(session.execute(query).all()))  # this transaction's own changes included
            seen.subtract(pending)
            self._committed, self._read_at = seen, now
        total = Counter(self._committed)
        total.update(pending)
        return total

    def committed(self, changes: Counter) -> None:
        if self._committed is not None:
            self._committed.update(changes)

    def forget(self) -> None:
        self._committed = None
