"""How many agent notifications inbound mail may cause (``[workflow] notify_limit``).

A mail from someone who is not an authenticated agent notifies agents of a new ticket, a
reply, an assignment, a rule's ``notify``. Within ``notify_window`` seconds the first
``notify_limit`` such mails from one sender, and the first ``notify_limit`` on one ticket,
are notified one by one. After that a mail is still stored, threaded, acknowledged (within
the auto-reply limit) and routed as usual, but the notifications it would have caused are
held: one :class:`~maildesk.storage.models.HeldNotification` per recipient, listed in that
recipient's next digest (:mod:`maildesk.outgoing.digest`), and a ``notifications_held`` event on the
ticket says which limit held them.

The decision is taken once per mail, by its :class:`Gate`, at its first notification; every
notification of that mail follows it. A mail that notified counts once (one
:class:`~maildesk.storage.models.Notified` row), however many agents it reached. The counts are read
from the database: inside a processing batch that is exact, because a batch never holds two
mails from one sender or on one ticket (:meth:`maildesk.storage.batch.Batch.guard_message` and
``guard_ticket`` cut the batch first), so every earlier mail that counts has been flushed
into the transaction before the count is read. Several instances on one PostgreSQL
database may each let a mail through in the same instant: the limit can then be passed by
at most one mail per instance.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from maildesk.desk import Desk
from maildesk.storage.models import HeldNotification, Notified, Ticket
from maildesk.storage.writer import Writer, opened_here
from maildesk.tickets.state import record

__all__ = ["Gate"]

_BY_SENDER = select(func.count()).select_from(Notified).where(Notified.sender == bindparam("sender"),
                                                               Notified.at > bindparam("since"))
_BY_TICKET = select(func.count()).select_from(Notified).where(Notified.ticket_id == bindparam("ticket"),
                                                               Notified.at > bindparam("since"))


class Gate:
    """The fan-out decision for one inbound mail from ``sender`` about ``ticket``."""

    def __init__(self, desk: Desk, ticket: Ticket, sender: str, subject: str, now: datetime):
        self.desk, self.ticket, self.now = desk, ticket, now
        self.sender, self.subject = (sender or "").lower(), " ".join((subject or "").split())[:200]
        self.why: str | None = None  # "sender" | "ticket" once the mail is held
        self._decided = False
        self._held: list[str] = []

    def admits(self, w: Writer) -> bool:
        """True: notify as usual (the first call counts this mail); False: hold (see :meth:`hold`)."""
        session = w.session
        if not self._decided:
            self._decided = True
            self.why = self._over_limit(session)
            if self.why is None and self.desk.config.workflow.notify_limit > 0:
                _write(w, Notified, {"at": self.now, "sender": self.sender, "ticket_id": self.ticket.id})
        return self.why is None

    def hold(self, w: Writer, recipients: list[str], event: str) -> None:
        """Keep ``recipients`` (agent logins or plain addresses) for their digests instead of mailing them now."""
        for recipient in recipients:
            _write(w, HeldNotification, {
                "at": self.now, "recipient": recipient, "ticket_id": self.ticket.id, "sender": self.sender,
                "subject": self.subject, "event": event, "why": self.why, "digest_at": None})
        if recipients and not self._held:
            wf = self.desk.config.workflow
            whose = f"from {self.sender}" if self.why == "sender" else "on this ticket"
            record(w, self.ticket, "system", "notifications_held", self.now, why=self.why, event=event,
                   recipients=recipients[:20], reason=f"more than {wf.notify_limit} mails {whose} within "
                   f"{wf.notify_window} s ([workflow] notify_limit): listed in the next digest instead")
        self._held += recipients

    def _over_limit(self, session: Session) -> str | None:
        wf = self.desk.config.workflow
        if wf.notify_limit <= 0:
            return None
        since = self.now - timedelta(seconds=wf.notify_window)
        if self.sender and session.execute(_BY_SENDER, {"sender": self.sender, "since": since}).scalar_one() >= wf.notify_limit:
            return "sender"
        if not opened_here(session, self.ticket) and \
                session.execute(_BY_TICKET, {"ticket": self.ticket.id, "since": since}).scalar_one() >= wf.notify_limit:
            return "ticket"
        return None


def _write(w: Writer, model, row: dict) -> None:
    w.insert(model.__table__, row)
