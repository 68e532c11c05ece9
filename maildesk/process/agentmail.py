"""An authenticated agent's mail on a ticket: commands, internal notes, relayed replies.

Order for one mail: strip quoted history and signature; read the ``#commands`` on its
first lines; if any command is unknown or invalid, nothing changes and the agent gets one
mail saying what was wrong. Otherwise the commands apply (each an event with the agent
as actor); then the text, if any, is either an internal note (``#note``: relayed to the
other agents, never to the customer) or a reply relayed to the requester and the
ticket's Cc'd parties under the agent's name. Status changes the customer should know
about (resolved, closed) send them a templated mail after the reply.

``#merge MD-12`` closes this ticket into MD-12, and everything after it in the mail (the
following commands, the note or the reply) applies to MD-12. The merged ticket's
customer gets the ``merged`` notice naming MD-12 (never "closed"); their replies to any
of our earlier mail land on MD-12. One ``#merge`` per mail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maildesk.desk import Desk
from maildesk.outgoing.lifecycle import customer_merge_mail, customer_status_mail
from maildesk.outgoing.mailer import last_customer_message, queue_mail
from maildesk.outgoing.notify import agents_on_ticket, notify_agents
from maildesk.parse.message import InboundMessage
from maildesk.parse.quotes import reply_text
from maildesk.parse.subjects import find_refs, format_ref
from maildesk.policy.sync import db_agent
from maildesk.process.commands import Command, parse_commands
from maildesk.process.outcome import Outcome
from maildesk.sla import clock as slaclock
from maildesk.storage.models import InboxMail, MessageRef, Participant, Ticket, TicketMessage
from maildesk.storage.writer import Writer
from maildesk.tickets.state import add_participants, insert_ignore, record, resolve_merged, set_status, store_attachments

__all__ = ["handle_agent_mail"]


def handle_agent_mail(w: Writer, desk: Desk, row: InboxMail, msg: InboundMessage, ticket: Ticket,
                      agent, how: str, now: datetime, text: str | None = None) -> Outcome:
    """``text``: the commands and text as written (the web view's forms, maildesk.web.actions),
    instead of the mail's new text with its quotes and signature stripped."""
    session = w.session
    actor = f"agent:{agent.login}"
    ref = format_ref(desk.config.mail.ticket_prefix, ticket.id)
    parsed = parse_commands(reply_text(msg) if text is None else text, desk.config.mail.ticket_prefix)
    errors = parsed.errors + _semantic_errors(session, desk, ticket, parsed.commands)
    if errors:
        queue_mail(w, desk.mail, ticket, kind="error", template="command_error", to=[(agent.name, agent.address)],
                   now=now, auto=True, agent=agent.login, record=False, answering=msg.message_id,
                   extra={"agent_name": agent.name, "errors": errors})
        record(w, ticket, actor, "command_rejected", now, errors=errors, inbox=row.id)
        desk.wake("outbox")
        return Outcome("processed", f"agent {agent.login} on {ref}: rejected ({'; '.join(errors)[:200]}); error mail queued", ticket.id)

    if msg.message_id:  # replies to the agent's own mail thread here too
        insert_ignore(w, MessageRef, message_id=msg.message_id, ticket_id=ticket.id, direction="in")
    add_participants(w, ticket, [agent.address], "agent")
    status_before = {ticket.id: ticket.status}
    original = ticket
    ticket, explicit_status = _apply(w, desk, ticket, agent, actor, parsed.commands, now, status_before)
    did = [c.line for c in parsed.commands]
    if ticket is not original:  # everything after #merge, commands and text, is about the target
        did.append(f"now on {format_ref(desk.config.mail.ticket_prefix, ticket.id)}")

    if parsed.is_note:
        note = _store(w, ticket, msg, agent, "note", "int", parsed.text, now, row.id)
        record(w, ticket, actor, "note", now, message=note.id)
        others = [a for a in agents_on_ticket(session, desk, ticket) if a.login != agent.login]
        notify_agents(w, desk, ticket, "note", now, message=note, recipients=others, actor=agent.name)
        did.append("internal note")
    elif parsed.text:
        _relay(w, desk, ticket, msg, agent, parsed.text, now, row.id)
        if ticket.first_response_at is None:
            record(w, ticket, actor, "first_response", now)
        slaclock.agent_replied(ticket, now)
        if explicit_status is None:
            set_status(w, ticket, desk.config.workflow.agent_reply_status, actor, now, reason="agent replied")
        did.append("reply sent to the customer")

    if ticket is not original:  # its customer hears where the request lives now, not "closed"
        customer_merge_mail(w, desk, original, ticket, now)
        original.updated_at = now
    if ticket.status != status_before.get(ticket.id) and ticket.status in desk.config.workflow.notify_customer_on:
        customer_status_mail(w, desk, ticket, ticket.status, now)
    ticket.updated_at = now
    desk.wake("outbox")
    return Outcome("processed", f"agent {agent.login} ({how}) on {ref}: {', '.join(did) or 'nothing to do'}", ticket.id)


def _semantic_errors(session: Session, desk: Desk, ticket: Ticket, commands: list[Command]) -> list[str]:
    errors = []
    directory = desk.directory
    for c in commands:
        if c.name == "assign" and c.arg != "me" and directory.agent(c.arg) is None:
            errors.append(f"{c.line!r}: no agent {c.arg!r}; known: {', '.join(a.login for a in directory.agents)}")
        elif c.name == "team" and directory.team(c.arg) is None:
            errors.append(f"{c.line!r}: no team {c.arg!r}; known: {', '.join(t.name for t in directory.teams)}")
        elif c.name == "merge":
            target = _merge_target(session, desk, c.arg)
            if target is None:
                errors.append(f"{c.line!r}: there is no ticket {c.arg}")
            elif target.id == ticket.id:
                errors.append(f"{c.line!r}: a ticket cannot be merged into itself")
    merges = [c.line for c in commands if c.name == "merge"]
    if len(merges) > 1:
        errors.append(f"{', '.join(repr(m) for m in merges)}: one #merge per mail (the commands after it act on its target)")
    return errors


def _merge_target(session: Session, desk: Desk, arg: str) -> Ticket | None:
    numbers = find_refs(arg, desk.config.mail.ticket_prefix) or [int("".join(ch for ch in arg if ch.isdigit()))]
    return resolve_merged(session, session.get(Ticket, numbers[0]))


def _apply(w: Writer, desk: Desk, ticket: Ticket, agent, actor: str, commands: list[Command], now: datetime,
           status_before: dict[int, str]) -> tuple[Ticket, str | None]:
    """Apply commands in order; after ``#merge`` the rest apply to its target. Returns the
    ticket the mail ends on and the status an explicit command set on it, if any;
    ``status_before`` gets each ticket's status before the commands touched it."""
    session = w.session
    explicit = None
    for c in commands:
        if c.name in ("status", "close"):
            explicit = "closed" if c.name == "close" else c.arg
            set_status(w, ticket, explicit, actor, now, reason=c.line)
        elif c.name == "priority" and ticket.priority != c.arg:
            record(w, ticket, actor, "priority", now, old=ticket.priority, new=c.arg)
            ticket.priority = c.arg
            slaclock.recompute(desk.sla, ticket)
        elif c.name == "assign":
            target = agent if c.arg == "me" else desk.directory.agent(c.arg)
            row = db_agent(session, target.login)
            if ticket.assignee_id != row.id:
                record(w, ticket, actor, "assigned", now, old=ticket.assignee.login if ticket.assignee else None,
                       new=target.login)
                ticket.assignee = row
                if target.login != agent.login:
                    notify_agents(w, desk, ticket, "assigned", now, recipients=[target], actor=agent.name)
        elif c.name == "team" and ticket.team != c.arg:
            record(w, ticket, actor, "team", now, old=ticket.team, new=c.arg)
            ticket.team = c.arg
        elif c.name == "tag" and c.arg not in (ticket.tags or []):
            ticket.tags = [*(ticket.tags or []), c.arg]
            record(w, ticket, actor, "tag", now, tag=c.arg)
        elif c.name == "untag" and c.arg in (ticket.tags or []):
            ticket.tags = [t for t in ticket.tags if t != c.arg]
            record(w, ticket, actor, "untag", now, tag=c.arg)
        elif c.name == "cc":
            add_participants(w, ticket, [c.arg], "cc")
            record(w, ticket, actor, "cc", now, address=c.arg)
        elif c.name == "merge":
            ticket = _merge(w, desk, ticket, c.arg, actor, now)
            status_before.setdefault(ticket.id, ticket.status)
            explicit = None
    return ticket, explicit


def _merge(w: Writer, desk: Desk, ticket: Ticket, arg: str, actor: str, now: datetime) -> Ticket:
    """Close ``ticket`` into its target; its people take part in the target (its requester
    as a Cc'd party, so agents' replies there reach them too). Returns the target."""
    session = w.session
    target = _merge_target(session, desk, arg)
    for address, role in session.execute(select(Participant.address, Participant.role).where(Participant.ticket_id == ticket.id)):
        insert_ignore(w, Participant, ticket_id=target.id, address=address, role="cc" if role == "requester" else role)
    ticket.merged_into_id = target.id
    prefix = desk.config.mail.ticket_prefix
    record(w, ticket, actor, "merged", now, into=format_ref(prefix, target.id))
    record(w, target, actor, "merged_in", now, ticket=format_ref(prefix, ticket.id))
    if ticket.status != "closed":
        ticket.status, ticket.closed_at = "closed", now
    return target


def _store(w: Writer, ticket: Ticket, msg: InboundMessage, agent, kind: str, direction: str, text: str,
           now: datetime, inbox_id: int | None, message_id: str | None = None) -> TicketMessage:
    session = w.session
    m = TicketMessage(ticket_id=ticket.id, inbox_id=inbox_id, direction=direction, kind=kind, from_addr=agent.address,
                      from_name=agent.name, to=[a for _, a in msg.to], cc=[a for _, a in msg.cc], subject=msg.subject,
                      message_id=message_id or msg.message_id, text=text, thread_via=None, created_at=now)
    session.add(m)
    session.flush()  # its id goes into the note event
    store_attachments(w, m, msg.attachments)
    return m


def _relay(w: Writer, desk: Desk, ticket: Ticket, msg: InboundMessage, agent, text: str, now: datetime,
           inbox_id: int) -> None:
    session = w.session
    requester = ticket.requester
    ours = {a.lower() for a in desk.config.mail.addresses}
    agents = {a.address.lower() for a in desk.directory.agents} if desk.directory else set()
    cc = [("", a) for a, role in session.execute(select(Participant.address, Participant.role)
                                                 .where(Participant.ticket_id == ticket.id, Participant.role == "cc"))
          if a != requester.address and a not in ours and a not in agents]
    last = last_customer_message(session, ticket.id)
    queued = queue_mail(w, desk.mail, ticket, kind="reply", template="agent_reply", to=[(requester.name, requester.address)],
                        cc=cc, now=now, auto=False, from_name=f"{agent.name} via {desk.config.mail.support_name}",
                        answering=last.message_id if last else None, attachments=msg.attachments,
                        extra={"text": text, "agent_name": agent.name}, record_kind="agent_reply")
    m = queued.message
    m.from_name, m.text, m.inbox_id = agent.name, text, inbox_id
    session.flush()  # its id goes into the event below
    store_attachments(w, m, msg.attachments)
    record(w, ticket, f"agent:{agent.login}", "agent_reply", now, message=m.id, to=requester.address,
           cc=[a for _, a in cc], attachments=len(msg.attachments))
