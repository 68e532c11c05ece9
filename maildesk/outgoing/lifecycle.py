"""Status changes the customer hears about: resolved and closed notices, and a merge."""

from __future__ import annotations

from datetime import datetime

from maildesk.desk import Desk
from maildesk.outgoing.mailer import last_customer_message, queue_mail
from maildesk.parse.subjects import base_subject, format_ref
from maildesk.process.autoreply import may_autoreply
from maildesk.process.survey import survey_links
from maildesk.storage.models import Ticket
from maildesk.storage.writer import Writer
from maildesk.tickets.state import record

__all__ = ["customer_merge_mail", "customer_status_mail"]


def customer_status_mail(w: Writer, desk: Desk, ticket: Ticket, status: str, now: datetime,
                         extra: dict | None = None) -> bool:
    """Queue the templated notice for ``status`` to the requester; False when it must not go."""
    session = w.session
    address = ticket.requester.address
    blocked = may_autoreply(w, address, now, limit=10**9, window_s=1)  # only the bounce suppression applies
    if blocked or ticket.spam:
        record(w, ticket, "system", "status_mail_suppressed", now, status=status, reason=blocked or "spam")
        return False
    last = last_customer_message(session, ticket.id)
    survey = survey_links(desk, ticket) if status == "resolved" else None
    queue_mail(w, desk.mail, ticket, kind="status", template=f"status_{status}",
               to=[(ticket.requester.name, address)], now=now, auto=True,
               answering=last.message_id if last else None, extra={"survey": survey, **(extra or {})},
               record_kind=f"status_{status}")
    record(w, ticket, "system", "status_mail", now, status=status, to=address)
    desk.wake("outbox")
    return True


def customer_merge_mail(w: Writer, desk: Desk, ticket: Ticket, target: Ticket, now: datetime) -> bool:
    """Tell the requester of ``ticket``, just merged into ``target``, where their request lives
    now (template ``merged``). It goes out on ``ticket``, so it threads into their conversation;
    a reply to it (or to any earlier mail of ours) lands on ``target``."""
    session = w.session
    address = ticket.requester.address
    blocked = may_autoreply(w, address, now, limit=10**9, window_s=1)  # only the bounce suppression applies
    if blocked or ticket.spam:
        record(w, ticket, "system", "status_mail_suppressed", now, status="merged", reason=blocked or "spam")
        return False
    prefix = desk.config.mail.ticket_prefix
    last = last_customer_message(session, ticket.id)
    queue_mail(w, desk.mail, ticket, kind="status", template="merged", to=[(ticket.requester.name, address)], now=now,
               auto=True, answering=last.message_id if last else None, record_kind="merged_notice",
               extra={"target_ref": format_ref(prefix, target.id), "target_subject": base_subject(target.subject, prefix)})
    record(w, ticket, "system", "status_mail", now, status="merged", to=address, into=format_ref(prefix, target.id))
    desk.wake("outbox")
    return True
