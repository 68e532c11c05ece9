"""The injectable clock: tests move time instead of sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["Clock"]


class Clock:
    """An injectable clock: tests move time instead of sleeping."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now
