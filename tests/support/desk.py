"""In-process helpers on a Desk (the composition root): deliver a mail through intake and
processing, read what was queued, show a ticket as the CLI does."""

from __future__ import annotations

__all__ = ["deliver", "outbox_mails", "ticket_json"]


def deliver(desk, msg, *, rcpt=("support@example.test",), mail_from: str | None = None, source: str = "smtp"):
    """Accept and process one message in-process; returns its ProcessResult."""
    from email.utils import parseaddr

    from maildesk.ingest.intake import Intake, RawMail
    from maildesk.process.pipeline import process_pending

    raw = msg if isinstance(msg, bytes) else msg.as_bytes()
    if mail_from is None:
        mail_from = parseaddr(msg["From"])[1] if not isinstance(msg, bytes) else "sender@customer.test"
    inbox_id = Intake(desk.store, desk.clock).store_one(RawMail(raw, mail_from, tuple(rcpt), source))
    results = process_pending(desk, ids=[inbox_id])
    assert len(results) == 1, f"inbox {inbox_id} was not processed (already processed?)"
    return results[0]


def outbox_mails(desk, kind: str | None = None):
    """Queued/sent outgoing mail, parsed, oldest first."""
    from email import message_from_bytes, policy

    from sqlalchemy import select

    from maildesk.storage.models import Outbox

    with desk.store.read() as s:
        q = select(Outbox).order_by(Outbox.id)
        if kind:
            q = q.where(Outbox.kind == kind)
        return [message_from_bytes(r.raw, policy=policy.default) for r in s.scalars(q)]


def ticket_json(desk, number: int) -> dict:
    from maildesk.storage.models import Ticket
    from maildesk.tickets.views import ticket_detail

    with desk.store.read() as s:
        return ticket_detail(s, s.get(Ticket, number), desk.config.mail.ticket_prefix)
