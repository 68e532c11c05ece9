"""The desk's vocabulary: ticket statuses, priorities, open states and event kinds.

Defined here once; every module that checks or offers one of these words imports it from
here. A leaf module: it imports nothing from maildesk (nor SQLAlchemy), so the CLI can
use it without loading the database layer.
"""

from __future__ import annotations

__all__ = [
    "COMMAND_STATUSES",
    "DONE_STATES",
    "INBOX_STATUSES",
    "NOTIFY_EVENTS",
    "OPEN_STATES",
    "PRIORITIES",
    "STATUSES",
]

#: Every status a ticket can have, in the order of its life.
STATUSES = ("new", "open", "pending", "resolved", "closed")
#: Statuses of a ticket that still needs work.
OPEN_STATES = ("new", "open", "pending")
#: Statuses of a ticket that is done (a reply to it reopens it or opens a follow-up).
DONE_STATES = ("resolved", "closed")
#: The statuses an agent can set with ``#status`` (every status but ``new``).
COMMAND_STATUSES = STATUSES[1:]
#: Ticket priorities, lowest first (escalation moves one step to the right).
PRIORITIES = ("low", "normal", "high", "urgent")
#: Statuses of a row in the inbox (the raw message store).
INBOX_STATUSES = ("pending", "processed", "failed", "duplicate")
#: The event kinds an agent is notified of, and can opt out of (``notify_opt_out``).
NOTIFY_EVENTS = ("new_ticket", "customer_reply", "assigned", "note", "status_change", "sla_warning", "sla_breach",
                 "no_assignee")
