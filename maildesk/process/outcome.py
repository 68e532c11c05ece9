"""What processing did with one message: control flow as a value, not an exception."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Outcome"]


@dataclass(frozen=True)
class Outcome:
    status: str  # processed | duplicate
    text: str
    ticket_id: int | None = None
