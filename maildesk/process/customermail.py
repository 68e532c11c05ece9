"""What mail from a customer (anyone but an authenticated agent) does to a ticket.

The bodies of the customer stages of :data:`maildesk.process.inbound.STAGES`: a new ticket
(and a follow-up of a closed one, or a ticket of their own for a stranger naming someone
else's), a verified reply, and unverified mail from a participant; with the
acknowledgement and the notifications each causes.
"""

from __future__ import annotations

from datetime import datetime

from maildesk.desk import Desk
from maildesk.outgoing.fanout import Gate
from maildesk.outgoing.mailer import queue_mail
from maildesk.outgoing.notify import agents_on_ticket, notify_addresses, notify_agents, reaches
from maildesk.outgoing.statuslinks import status_url
from maildesk.parse.addresses import base_address, is_support_address
from maildesk.parse.message import InboundMessage
from maildesk.parse.subjects import base_subject, format_ref
from maildesk.policy.kb import suggest
from maildesk.process.autoreply import may_autoreply, record_autoreply, suppression_reason
from maildesk.process.backscatter import backscatter_reason
from maildesk.process.correlate import ThreadMatch
from maildesk.process.decisions import apply_decision, decide
from maildesk.process.outcome import Outcome
from maildesk.process.unassigned import note_unassigned
from maildesk.sla import clock as slaclock
from maildesk.storage.models import InboxMail, Ticket
from maildesk.storage.writer import Writer
from maildesk.tickets.state import add_message, add_participants, contact_for, open_ticket, participants, record, set_status

__all__ = ["UNVERIFIED_WHY", "is_ours", "new_ticket", "ref", "reply", "unverified"]


def ref(desk: Desk, ticket_id: int | None) -> str:
    return format_ref(desk.config.mail.ticket_prefix, ticket_id) if ticket_id else "no ticket"


def is_ours(desk: Desk):
    return lambda address: is_support_address(address, desk.config.mail.addresses)



def reply(w: Writer, desk: Desk, row: InboxMail, msg: InboundMessage, match: ThreadMatch, now: datetime) -> Outcome:
    ticket = match.ticket
    assert ticket is not None
    w.touch(ticket)
    stored = add_message(w, ticket, msg, inbox_id=row.id, kind="customer", via=match.via, now=now,
                         max_attachment_size=desk.config.mail.max_attachment_size)
    add_participants(w, ticket, [msg.from_addr, *(a for _, a in msg.cc), *(a for _, a in msg.to)], "cc", is_ours(desk))
    if ticket.status in ("pending", "resolved"):
        set_status(w, ticket, "open", "customer", now, reason="customer replied")
    record(w, ticket, "customer", "customer_reply", now, via=match.via, inbox=row.id, message_id=msg.message_id)
    slaclock.customer_replied(desk.sla, ticket, now)
    decision = decide(w, desk, msg, now, is_reply=True, known_contact=True)
    assigned = apply_decision(w, desk, ticket, decision, now) if decision is not None else []
    if decision is not None and decision.priority:
        slaclock.recompute(desk.sla, ticket)
    gate = _gate(desk, ticket, msg, now)
    notify_agents(w, desk, ticket, "customer_reply", now, message=stored, gate=gate)
    _notify_assigned(w, desk, ticket, assigned, now, stored, decision, gate)
    note_unassigned(w, desk, ticket, decision, now, stored)
    return Outcome("processed", f"reply on {ref(desk, ticket.id)} (threaded by {match.via})", ticket.id)


UNVERIFIED_WHY = {"header": "it references a Message-ID that maildesk did not send to its sender",
                   "subject": "only the ticket reference in its subject matched, and a From: line proves nothing"}


def unverified(w: Writer, desk: Desk, row: InboxMail, msg: InboundMessage, match: ThreadMatch, now: datetime) -> Outcome:
    """A participant's address on mail that proves nothing: kept for the agents, marked; it adds
    nobody, rates nothing and is relayed to no one. It does reopen a pending ticket (one
    waiting on the customer), so that a customer writing back is never left to be closed as
    silent; a forger gains nothing from that but the agents' attention. A resolved ticket
    stays resolved: its survey is the customer's to answer."""
    session = w.session
    ticket = match.ticket
    assert ticket is not None
    w.touch(ticket)
    stored = add_message(w, ticket, msg, inbox_id=row.id, kind="unverified", via=match.via, now=now,
                         max_attachment_size=desk.config.mail.max_attachment_size)
    on_ticket, ours = participants(session, ticket.id), is_ours(desk)
    addresses = (msg.from_addr, *(a for _, a in msg.to), *(a for _, a in msg.cc))
    new = [a for a in dict.fromkeys(a.lower() for a in addresses if a) if a not in on_ticket and not ours(a)]
    why = UNVERIFIED_WHY.get(match.via, "it proves no place on this ticket")
    record(w, ticket, "system", "unverified_mail", now, inbox=row.id, via=match.via, why=why, sender=msg.from_addr,
           new_addresses=new[:50], message_id=msg.message_id)
    if ticket.status == "pending":
        set_status(w, ticket, "open", "customer", now, reason="unverified mail from a participant")
        slaclock.customer_replied(desk.sla, ticket, now)
    notify_agents(w, desk, ticket, "customer_reply", now, message=stored, extra={"unverified": why, "new_addresses": new[:20]},
                  gate=_gate(desk, ticket, msg, now))
    return Outcome("processed", f"unverified mail kept on {ref(desk, ticket.id)} (threaded by {match.via}: {why}); "
                   "nobody added, nothing changed", ticket.id)


def new_ticket(w: Writer, desk: Desk, row: InboxMail, msg: InboundMessage, match: ThreadMatch, now: datetime,
         referenced: bool = False) -> Outcome:
    """A new ticket; linked to ``match.ticket`` when that is closed (a follow-up) or when the mail
    names it without proof (``referenced``: a stranger's mail never enters someone else's ticket)."""
    sender = msg.sender or "unknown@invalid"
    requester, known = contact_for(w, sender, msg.from_name, now)
    parent = match.ticket
    if parent is not None:
        w.touch(parent)
    support = next((a for a in (*msg.rcpt_to, *msg.recipients) if is_ours(desk)(a)), None)
    if support:
        support = base_address(support)
    ticket = open_ticket(w, msg, requester, now, parent_id=parent.id if parent else None, support_address=support,
                         team=next((b.team for b in desk.config.imap if b.team and (b.queue or b.name) == msg.queue), None))
    if parent is not None and not referenced:  # "Re: [MD-14] Closed: Printer" -> "Printer"
        ticket.subject = base_subject(msg.subject, desk.config.mail.ticket_prefix) or msg.subject
    stored = add_message(w, ticket, msg, inbox_id=row.id, kind="customer",
                         via="new" if parent is None or referenced else "follow-up",
                         now=now, max_attachment_size=desk.config.mail.max_attachment_size)
    add_participants(w, ticket, [sender], "requester", is_ours(desk))
    add_participants(w, ticket, [*(a for _, a in msg.cc), *(a for _, a in msg.to)], "cc", is_ours(desk))
    link = {"references": parent.id} if referenced and parent else {"follow_up_of": parent.id if parent else None}
    record(w, ticket, "customer", "created", now, inbox=row.id, source=msg.source, message_id=msg.message_id, **link)
    if parent is not None and referenced:
        match.security.append(f"mail from a non-participant named {ref(desk, parent.id)} ({UNVERIFIED_WHY.get(match.via, '')}); "
                              f"not attached there, opened {ref(desk, ticket.id)} for it instead")
        record(w, parent, "system", "security", now, reason=match.security[-1], inbox=row.id, sender=msg.from_addr)
    elif parent is not None:
        record(w, parent, "customer", "follow_up", now, follow_up=ticket.id)
    decision = decide(w, desk, msg, now, is_reply=False, known_contact=known)
    assigned = apply_decision(w, desk, ticket, decision, now) if decision is not None else []
    promise = slaclock.start(desk.sla, ticket)
    if decision is not None and (decision.spam or not decision.ack):
        why = "marked as spam" if decision.spam else f"rule {decision.source('ack') or '?'} says no acknowledgement"
        record(w, ticket, "system", "autoreply_suppressed", now, reason=why)
        ack = f"no acknowledgement: {why}"
    else:
        template = (decision.ack_template if decision is not None else None) or "ack"
        articles = suggest(desk.policy.kb, msg.subject, msg.text) if desk.policy is not None else []
        if articles:
            record(w, ticket, "system", "kb_suggested", now, articles=[a.slug for a in articles])
        ack = _acknowledge(w, desk, ticket, msg, now, template=template, extra={"promise": promise, "articles": articles})
    if not ticket.spam:
        _announce(w, desk, ticket, decision, assigned, now, stored, _gate(desk, ticket, msg, now))
    text = f"new ticket {ref(desk, ticket.id)}" + (
        "" if parent is None else f" (names {ref(desk, parent.id)} without proof)" if referenced
        else f" (follow-up of closed {ref(desk, parent.id)})")
    routed = ""
    if decision is not None and decision.matched:
        routed = f"; rules {', '.join(decision.matched)}: priority {ticket.priority}, team {ticket.team or '-'}, " \
                 f"assignee {ticket.assignee.login if ticket.assignee else '-'}"
    return Outcome("processed", f"{text}; {ack}{routed}", ticket.id)


def _gate(desk: Desk, ticket: Ticket, msg: InboundMessage, now: datetime) -> Gate:
    """The fan-out limit for this mail's notifications; the sender is keyed as the batch guard keys it."""
    return Gate(desk, ticket, msg.from_addr or msg.mail_from, msg.subject, now)


def _announce(w: Writer, desk: Desk, ticket: Ticket, decision, assigned: list[str], now: datetime, stored,
              gate: Gate | None = None) -> None:
    """Who hears of a new ticket, one mail each: an agent the rules assigned gets "assigned";
    the others it concerns (its team while unassigned) "new_ticket"; the agents a rule's
    ``notify`` names get it even when they opted out of new_ticket; when nobody could be
    assigned, the team's lead is told why. ``gate``: the fan-out limit (:mod:`maildesk.outgoing.fanout`)."""
    session = w.session
    told = set(_notify_assigned(w, desk, ticket, assigned, now, stored, decision, gate))
    others = [a for a in agents_on_ticket(session, desk, ticket) if a.login not in assigned]
    notify_agents(w, desk, ticket, "new_ticket", now, message=stored, recipients=others, gate=gate)
    told.update(a.login for a in others if reaches(a, "new_ticket"))
    _notify_extra(w, desk, ticket, decision, now, stored, told, gate)
    note_unassigned(w, desk, ticket, decision, now, stored)


def _notify_assigned(w: Writer, desk: Desk, ticket: Ticket, logins: list[str], now: datetime, stored,
                     decision, gate: Gate | None = None) -> list[str]:
    """The agents the rules just assigned hear of it ("assigned"); returns who was told."""
    directory = desk.directory
    agents = [directory.agent(login) for login in logins if directory and directory.agent(login)]
    if not agents:
        return []
    rule = decision.source("assign") if decision is not None else None
    notify_agents(w, desk, ticket, "assigned", now, message=stored, recipients=agents,
                  actor=f"rule {rule}" if rule else "routing rules",
                  extra={"reason": decision.assign_reason if decision is not None else ""}, gate=gate)
    return [a.login for a in agents if reaches(a, "assigned")]


def _notify_extra(w: Writer, desk: Desk, ticket: Ticket, decision, now: datetime, stored, told: set[str],
                  gate: Gate | None = None) -> None:
    """A rule's ``notify`` (agent logins are resolved to their addresses when the rules load):
    agents get the new_ticket notification whatever their opt-outs, unless this mail already
    told them of the ticket; other addresses a copy."""
    if decision is None or not decision.notify:
        return
    directory = desk.directory
    agents, others = {}, []
    for entry in decision.notify:
        agent = (directory.agent_by_address(entry) or directory.agent(entry)) if directory is not None else None
        if agent is None:
            others.append(entry)
        elif agent.login not in told:
            agents.setdefault(agent.login, (agent, _notify_rule(desk, decision, entry)))
    for agent, rule in agents.values():
        notify_agents(w, desk, ticket, "new_ticket", now, message=stored, recipients=[agent], explicit=True,
                      extra={"rule": rule}, gate=gate)
    if not notify_addresses(w, desk, ticket, others, "rule_notify", now, message=stored, gate=gate):
        return
    for address in others:
        record(w, ticket, f"rule:{_notify_rule(desk, decision, address)}", "notified", now, to=address)


def _notify_rule(desk: Desk, decision, entry: str) -> str:
    """The first matched rule whose ``notify`` names ``entry``."""
    ruleset = desk.ruleset
    for name in decision.matched:
        rule = ruleset.rule(name) if ruleset is not None else None
        if rule is not None and entry in (rule.then.notify or ()):
            return name
    return "routing"


def _acknowledge(w: Writer, desk: Desk, ticket: Ticket, msg: InboundMessage, now: datetime,
                 template: str = "ack", extra: dict | None = None) -> str:
    reason = suppression_reason(msg, desk.config.mail.addresses, desk.loop_id) or backscatter_reason(msg, desk.config.auth)
    address = ticket.requester.address
    if reason is None:
        reason = may_autoreply(w, address, now, desk.config.mail.autoreply_limit, desk.config.mail.autoreply_window)
    if reason is not None:
        record(w, ticket, "system", "autoreply_suppressed", now, reason=reason)
        return f"no acknowledgement: {reason}"
    status = status_url(w.session, desk.config, desk.secret, address)  # [web]: the customer's status page (maildesk/outgoing/statuslinks.py)
    queue_mail(w, desk.mail, ticket, kind="ack", template=template, to=[(ticket.requester.name, address)],
               now=now, auto=True, answering=msg.message_id,
               extra={"promise": None, "articles": [], "status_url": status, **(extra or {})}, record_kind="autoreply")
    record_autoreply(w, address, now)
    record(w, ticket, "system", "acknowledged", now, to=address, template=template)
    desk.wake("outbox")
    return "acknowledgement queued"
