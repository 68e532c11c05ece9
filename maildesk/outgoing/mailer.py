"""Render, compose and queue one outgoing mail about a ticket, in the caller's transaction.

Every mail maildesk sends goes through :func:`queue_mail`: it gets our Message-ID
(128 random bits, recorded for threading), its own signed envelope sender (VERP: bounces
prove which mail they are about), the signed ``Reply-To``, the loop header, the RFC 3834
headers when it is automatic, and threading headers that continue the customer's
conversation (``In-Reply-To``, ``References``, Outlook's ``Thread-Index``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from maildesk.outgoing.mailbuild import Body, Outgoing, build_body, compose, continue_thread_index, message_id_domain, new_message_id
from maildesk.outgoing.outbox import enqueue
from maildesk.outgoing.render import Rendered, Renderer
from maildesk.outgoing.tokens import ReplyToken, bounce_address, make_address, new_key
from maildesk.parse.subjects import base_subject, format_ref
from maildesk.process.autoreply import AUTO_HEADERS, LOOP_HEADER
from maildesk.storage.models import Ticket, TicketMessage
from maildesk.storage.writer import Writer, opened_here

__all__ = ["Letter", "MailContext", "Queued", "last_customer_message", "prepare", "queue_mail", "thread_refs", "ticket_context"]


_INBOUND_IDS = (select(TicketMessage.message_id)
                .where(TicketMessage.ticket_id == bindparam("ticket"), TicketMessage.direction == "in",
                       TicketMessage.message_id.is_not(None))
                .order_by(TicketMessage.id))


@dataclass(frozen=True)
class MailContext:
    """What every outgoing mail needs from the configuration."""

    renderer: Renderer
    secret: str
    support_addresses: tuple[str, ...]
    support_name: str
    prefix: str
    loop_id: str
    alternative_max: int = 102_400  # [outbound] alternative_max: a longer text goes without its HTML copy


@dataclass(frozen=True)
class Letter:
    """A rendered mail and its encoded MIME body: what copies of one mail to several people share."""

    rendered: Rendered
    body: Body


@dataclass(frozen=True)
class Queued:
    message_id: str
    message: TicketMessage | None  # the ticket's record of it (None for agent notifications)


def ticket_context(ctx: MailContext, ticket: Ticket) -> dict:
    ref = format_ref(ctx.prefix, ticket.id)
    return {
        "ref": ref,
        "ticket": ticket,
        "base_subject": base_subject(ticket.subject, ctx.prefix),
        "support_name": ctx.support_name,
        "requester_name": ticket.requester.name if ticket.requester else "",
        "requester": ticket.requester.address if ticket.requester else "",
        "requester_display": _display(ticket.requester.name, ticket.requester.address) if ticket.requester else "",
    }


def _display(name: str, address: str) -> str:
    """``Jane Doe <jane@x>``, or just ``jane@x`` when there is no name (or the name is the address)."""
    name = " ".join((name or "").split())
    return f"{name} <{address}>" if name and name.strip("<>").lower() != address.lower() else address


def last_customer_message(session: Session, ticket_id: int) -> TicketMessage | None:
    return session.scalars(select(TicketMessage).where(TicketMessage.ticket_id == ticket_id,
                                                       TicketMessage.direction == "in", TicketMessage.kind == "customer")
                           .order_by(TicketMessage.id.desc()).limit(1)).first()


def thread_refs(session: Session, ticket: Ticket, answering: str | None) -> tuple[str, ...]:
    """References for a reply: the customer's message ids on the ticket, oldest first, ending with ``answering``."""
    ids = [] if opened_here(session, ticket) else list(session.scalars(_INBOUND_IDS, {"ticket": ticket.id}))
    if answering and answering in ids:
        ids.remove(answering)
    refs = ids[:1] + ids[-8:] if len(ids) > 9 else ids
    return tuple(dict.fromkeys([*refs, *([answering] if answering else [])]))


def prepare(ctx: MailContext, ticket: Ticket, template: str, extra: dict | None = None, attachments: tuple = ()) -> Letter:
    """Render ``template`` about ``ticket`` and encode its body once. A text longer than
    ``ctx.alternative_max`` goes as text/plain alone: no mail carries a large body twice."""
    rendered = ctx.renderer.render(template, **{**ticket_context(ctx, ticket), **(extra or {})})
    html = rendered.html if len(rendered.text) <= ctx.alternative_max else None  # a long text is not sent twice
    return Letter(rendered, build_body(rendered.text, html, attachments))


def queue_mail(w: Writer, ctx: MailContext, ticket: Ticket, *, kind: str, template: str,
               to: list[tuple[str, str]], now: datetime, auto: bool, extra: dict | None = None,
               cc: list[tuple[str, str]] | None = None, agent: str | None = None, from_name: str | None = None,
               answering: str | None = None, attachments: tuple = (), record_kind: str | None = None,
               direction: str = "out", record: bool = True, headers: dict | None = None,
               letter: Letter | None = None, refs: tuple[str, ...] | None = None) -> Queued:
    """Queue one mail about ``ticket``; ``agent`` puts that agent's login into the reply token.
    ``record=False`` keeps it off the ticket's message list (agent notifications); its
    Message-ID is remembered for threading either way. ``letter`` (from :func:`prepare`)
    is a mail already rendered for someone else, ``refs`` the ticket's :func:`thread_refs`."""
    session = w.session
    support = ticket.support_address or ctx.support_addresses[0]
    letter = letter or prepare(ctx, ticket, template, extra, attachments)
    rendered = letter.rendered
    if refs is None:
        refs = thread_refs(session, ticket, answering)
    new_index = continue_thread_index(ticket.thread_index, now) if ticket.thread_index else None
    key = new_key()  # the Message-ID's random part, also named by this mail's own bounce address
    out = Outgoing(
        from_addr=support,
        from_name=from_name or ctx.support_name,
        to=to,
        cc=cc or [],
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        reply_to=make_address(ctx.secret, support, ReplyToken("t", ticket.id, agent)),
        in_reply_to=answering or (refs[-1] if refs else None),
        references=refs,
        auto_headers=AUTO_HEADERS if auto else {},
        extra_headers={LOOP_HEADER: ctx.loop_id, "X-Maildesk-Ticket": format_ref(ctx.prefix, ticket.id), **(headers or {})},
        attachments=attachments,
        thread_index=new_index,
        thread_topic=ticket.thread_topic or (base_subject(ticket.subject, ctx.prefix) if new_index else None),
        message_id=new_message_id(message_id_domain(support), key),
    )
    raw, message_id = compose(out, now, letter.body)
    if new_index:
        ticket.thread_index = new_index
    rcpt = [a for _, a in to] + [a for _, a in (cc or [])]
    enqueue(w, ticket_id=ticket.id, kind=kind, raw=raw, message_id=message_id,
            mail_from=bounce_address(ctx.secret, support, key), rcpt_to=rcpt, now=now)
    message = None
    if record:
        message = TicketMessage(ticket_id=ticket.id, direction=direction, kind=record_kind or kind, from_addr=support,
                                from_name=out.from_name, to=[a for _, a in to], cc=[a for _, a in (cc or [])],
                                subject=rendered.subject, message_id=message_id, text=rendered.text,
                                thread_via=None, created_at=now)
        session.add(message)
    return Queued(message_id, message)
