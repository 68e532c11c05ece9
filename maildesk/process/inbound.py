"""What one parsed inbound message does to the tickets (classify -> thread -> act).

:func:`handle` runs inside the caller's transaction (a savepoint per message) and
returns an :class:`Outcome`; it never commits. Control flow is not an error: our own
mail, a duplicate, a bounce or a suppressed auto-reply are outcomes, not exceptions.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from maildesk.desk import Desk
from maildesk.ingest.smtp import is_support_address
from maildesk.outgoing.fanout import Gate
from maildesk.outgoing.mailer import queue_mail
from maildesk.outgoing.notify import agents_on_ticket, notify_addresses, notify_agents, reaches
from maildesk.parse.message import InboundMessage
from maildesk.parse.quotes import new_text
from maildesk.parse.subjects import base_subject, find_refs, format_ref
from maildesk.policy.kb import suggest
from maildesk.process.agentmail import handle_agent_mail
from maildesk.process.authz import identify
from maildesk.process.autoreply import LOOP_HEADER, may_autoreply, record_autoreply, suppression_reason
from maildesk.process.backscatter import backscatter_reason
from maildesk.process.bounces import handle_bounce, is_bounce_candidate
from maildesk.process.correlate import ThreadMatch, find_ticket, first_valid_token, is_participant
from maildesk.process.decisions import apply_decision, decide
from maildesk.process.outcome import Outcome
from maildesk.process.survey import digit_rating, record_rating
from maildesk.process.unassigned import note_unassigned
from maildesk.sla import clock as slaclock
from maildesk.storage.batch import active, isolate, known
from maildesk.storage.models import InboxMail, MessageRef, Outbox, Ticket
from maildesk.tickets.state import add_message, add_participants, contact_for, open_ticket, participants, record, set_status
from maildesk.web.links import status_url

__all__ = ["Outcome", "handle"]

log = logging.getLogger("maildesk.pipeline")
_STORED_ON = select(MessageRef.ticket_id).where(MessageRef.message_id == bindparam("mid")).limit(1)
_SENT_BY_US = select(Outbox.ticket_id).where(Outbox.message_id == bindparam("mid")).limit(1)


def handle(session: Session, desk: Desk, row: InboxMail, msg: InboundMessage, now: datetime) -> Outcome:
    mail = desk.config.mail
    batch = active(session)
    if batch is not None:  # nothing below changes anything before the guards have passed
        batch.guard_message(msg.from_addr or msg.mail_from, msg.message_id, msg.thread_ids,
                            find_refs(msg.subject, mail.ticket_prefix))
    own = _own_mail(session, desk, msg)
    if own is not None:
        return own
    if msg.message_id:
        seen = _lookup(session, "ref", _STORED_ON, msg.message_id)
        if seen is not None:
            return Outcome("duplicate", f"Message-ID already stored on {_ref(desk, seen.ticket_id)}; not stored again",
                           seen.ticket_id)
    if is_bounce_candidate(msg, mail.addresses):
        isolate(session, "delivery report or null-sender mail")
        return handle_bounce(session, desk, msg, now)
    who = identify(msg, first_valid_token(msg, secret=desk.secret, support=mail.addresses), desk.directory,
                   desk.config.auth.trusted_authserv_ids, desk.config.auth.dkim_domains)
    if who.claimed is not None:
        isolate(session, "mail from an agent's address")
    match = find_ticket(session, msg, secret=desk.secret, support=mail.addresses, prefix=mail.ticket_prefix,
                        sender_is_agent=who.is_agent)
    if batch is not None:
        batch.guard_ticket(match.ticket)
        if match.ticket is not None and (match.ticket.status in ("resolved", "closed")
                                         or (match.token is not None and match.token.kind == "s")):
            isolate(session, "may be a survey answer or a follow-up")
    rated = _survey_answer(session, desk, row, msg, match, who, now)
    if rated is not None:
        return rated
    if who.claimed is not None and not who.is_agent:
        match.security.append(f"mail claims to be from agent {who.claimed.login} but is not authenticated (no valid agent "
                              "token, no trusted DKIM/SPF pass): treated as a customer mail, no command was run")
    if who.is_agent and match.ticket is not None:
        outcome = handle_agent_mail(session, desk, row, msg, match.ticket, who.agent, who.how, now)
    elif match.ticket is None or match.ticket.status == "closed":
        outcome = _new(session, desk, row, msg, match, now)
    elif match.verified:
        outcome = _reply(session, desk, row, msg, match, now)
    elif is_participant(session, match.ticket.id, msg.from_addr):
        outcome = _unverified(session, desk, row, msg, match, now)
    else:  # a stranger naming someone else's mail: their own ticket, linked, and the other one untouched
        outcome = _new(session, desk, row, msg, match, now, referenced=True)
    _record_security(session, desk, row, msg, match, outcome, now)
    return outcome


def _record_security(session: Session, desk: Desk, row: InboxMail, msg: InboundMessage, match: ThreadMatch,
                     outcome: Outcome, now: datetime) -> None:
    """At most ``[mail] max_security_events`` events for one mail, then one that counts the rest."""
    cap = desk.config.mail.max_security_events
    for reason in match.security[:cap]:
        record(session, outcome.ticket_id, "system", "security", now, reason=reason, inbox=row.id,
               sender=msg.from_addr)
    if len(match.security) > cap:
        more = len(match.security) - cap
        record(session, outcome.ticket_id, "system", "security", now, inbox=row.id, sender=msg.from_addr, more=more,
               reason=f"and {more} more security problem(s) in this mail, not recorded one by one "
                      f"([mail] max_security_events = {cap})")


def _lookup(session: Session, kind: str, query, mid: str):
    """A row by Message-ID: from what the batch read ahead, else from the database."""
    hit, row = known(session, kind, mid)
    if hit:
        return None if row is None else _Row(*row)
    return session.execute(query, {"mid": mid}).first()


class _Row:
    __slots__ = ("ticket_id",)

    def __init__(self, ticket_id):
        self.ticket_id = ticket_id


def _survey_answer(session: Session, desk: Desk, row: InboxMail, msg: InboundMessage, match: ThreadMatch, who,
                   now: datetime) -> Outcome | None:
    """A click on a survey link (signed score token) or a digit-only reply to a resolved ticket."""
    ticket = match.ticket
    if ticket is None or who.is_agent:
        return None
    if match.token is not None and match.token.kind == "s":
        score, comment = match.token.score, new_text(msg.text)
        via = "survey link"
    elif match.verified and ticket.status in ("resolved", "closed") and (found := digit_rating(msg.text)) is not None:
        (score, comment), via = found, "digit reply"
    else:
        return None
    add_message(session, ticket, msg, inbox_id=row.id, kind="rating", via=match.via, now=now)
    return Outcome("processed", record_rating(session, desk, ticket, score, comment, via, now), ticket.id)


def _ref(desk: Desk, ticket_id: int | None) -> str:
    return format_ref(desk.config.mail.ticket_prefix, ticket_id) if ticket_id else "no ticket"


def _is_ours(desk: Desk):
    return lambda address: is_support_address(address, desk.config.mail.addresses)


def _own_mail(session: Session, desk: Desk, msg: InboundMessage) -> Outcome | None:
    """Mail this installation sent, seen again (Sent folder, a verbatim bounce, a loop)."""
    ours = desk.loop_id in msg.headers.get(LOOP_HEADER.lower(), ())
    row = None
    if msg.message_id:
        row = _lookup(session, "outbox", _SENT_BY_US, msg.message_id)
    if row is None and not ours:
        return None
    return Outcome("processed", "our own outgoing mail seen again; ignored (no ticket opened)",
                   row.ticket_id if row is not None else None)


def _reply(session: Session, desk: Desk, row: InboxMail, msg: InboundMessage, match: ThreadMatch, now: datetime) -> Outcome:
    ticket = match.ticket
    assert ticket is not None
    if (batch := active(session)) is not None:
        batch.touch(ticket)
    stored = add_message(session, ticket, msg, inbox_id=row.id, kind="customer", via=match.via, now=now,
                         max_attachment_size=desk.config.mail.max_attachment_size)
    add_participants(session, ticket, [msg.from_addr, *(a for _, a in msg.cc), *(a for _, a in msg.to)], "cc", _is_ours(desk))
    if ticket.status in ("pending", "resolved"):
        set_status(session, ticket, "open", "customer", now, reason="customer replied")
    record(session, ticket, "customer", "customer_reply", now, via=match.via, inbox=row.id, message_id=msg.message_id)
    slaclock.customer_replied(desk.sla, ticket, now)
    decision = decide(session, desk, msg, now, is_reply=True, known_contact=True)
    assigned = apply_decision(session, desk, ticket, decision, now) if decision is not None else []
    if decision is not None and decision.priority:
        slaclock.recompute(desk.sla, ticket)
    gate = _gate(desk, ticket, msg, now)
    notify_agents(session, desk, ticket, "customer_reply", now, message=stored, gate=gate)
    _notify_assigned(session, desk, ticket, assigned, now, stored, decision, gate)
    note_unassigned(session, desk, ticket, decision, now, stored)
    return Outcome("processed", f"reply on {_ref(desk, ticket.id)} (threaded by {match.via})", ticket.id)


_UNVERIFIED_WHY = {"header": "it references a Message-ID that maildesk did not send to its sender",
                   "subject": "only the ticket reference in its subject matched, and a From: line proves nothing"}


def _unverified(session: Session, desk: Desk, row: InboxMail, msg: InboundMessage, match: ThreadMatch, now: datetime) -> Outcome:
    """A participant's address on mail that proves nothing: kept for the agents, marked; it adds
    nobody, rates nothing and is relayed to no one. It does reopen a pending ticket (one
    waiting on the customer), so that a customer writing back is never left to be closed as
    silent; a forger gains nothing from that but the agents' attention. A resolved ticket
    stays resolved: its survey is the customer's to answer."""
    ticket = match.ticket
    assert ticket is not None
    if (batch := active(session)) is not None:
        batch.touch(ticket)
    stored = add_message(session, ticket, msg, inbox_id=row.id, kind="unverified", via=match.via, now=now,
                         max_attachment_size=desk.config.mail.max_attachment_size)
    on_ticket, ours = participants(session, ticket.id), _is_ours(desk)
    addresses = (msg.from_addr, *(a for _, a in msg.to), *(a for _, a in msg.cc))
    new = [a for a in dict.fromkeys(a.lower() for a in addresses if a) if a not in on_ticket and not ours(a)]
    why = _UNVERIFIED_WHY.get(match.via, "it proves no place on this ticket")
    record(session, ticket, "system", "unverified_mail", now, inbox=row.id, via=match.via, why=why, sender=msg.from_addr,
           new_addresses=new[:50], message_id=msg.message_id)
    if ticket.status == "pending":
        set_status(session, ticket, "open", "customer", now, reason="unverified mail from a participant")
        slaclock.customer_replied(desk.sla, ticket, now)
    notify_agents(session, desk, ticket, "customer_reply", now, message=stored, extra={"unverified": why, "new_addresses": new[:20]},
                  gate=_gate(desk, ticket, msg, now))
    return Outcome("processed", f"unverified mail kept on {_ref(desk, ticket.id)} (threaded by {match.via}: {why}); "
                   "nobody added, nothing changed", ticket.id)


def _new(session: Session, desk: Desk, row: InboxMail, msg: InboundMessage, match: ThreadMatch, now: datetime,
         referenced: bool = False) -> Outcome:
    """A new ticket; linked to ``match.ticket`` when that is closed (a follow-up) or when the mail
    names it without proof (``referenced``: a stranger's mail never enters someone else's ticket)."""
    sender = msg.sender or "unknown@invalid"
    requester, known = contact_for(session, sender, msg.from_name, now)
    parent = match.ticket
    if parent is not None and (batch := active(session)) is not None:
        batch.touch(parent)
    support = next((a for a in (*msg.rcpt_to, *msg.recipients) if _is_ours(desk)(a)), None)
    if support:
        local, _, domain = support.partition("@")
        support = f"{local.split('+', 1)[0]}@{domain}"
    ticket = open_ticket(session, msg, requester, now, parent_id=parent.id if parent else None, support_address=support,
                         team=next((b.team for b in desk.config.imap if b.team and (b.queue or b.name) == msg.queue), None))
    if parent is not None and not referenced:  # "Re: [MD-14] Closed: Printer" -> "Printer"
        ticket.subject = base_subject(msg.subject, desk.config.mail.ticket_prefix) or msg.subject
    stored = add_message(session, ticket, msg, inbox_id=row.id, kind="customer",
                         via="new" if parent is None or referenced else "follow-up",
                         now=now, max_attachment_size=desk.config.mail.max_attachment_size)
    add_participants(session, ticket, [sender], "requester", _is_ours(desk))
    add_participants(session, ticket, [*(a for _, a in msg.cc), *(a for _, a in msg.to)], "cc", _is_ours(desk))
    link = {"references": parent.id} if referenced and parent else {"follow_up_of": parent.id if parent else None}
    record(session, ticket, "customer", "created", now, inbox=row.id, source=msg.source, message_id=msg.message_id, **link)
    if parent is not None and referenced:
        match.security.append(f"mail from a non-participant named {_ref(desk, parent.id)} ({_UNVERIFIED_WHY.get(match.via, '')}); "
                              f"not attached there, opened {_ref(desk, ticket.id)} for it instead")
        record(session, parent, "system", "security", now, reason=match.security[-1], inbox=row.id, sender=msg.from_addr)
    elif parent is not None:
        record(session, parent, "customer", "follow_up", now, follow_up=ticket.id)
    decision = decide(session, desk, msg, now, is_reply=False, known_contact=known)
    assigned = apply_decision(session, desk, ticket, decision, now) if decision is not None else []
    promise = slaclock.start(desk.sla, ticket)
    if decision is not None and (decision.spam or not decision.ack):
        why = "marked as spam" if decision.spam else f"rule {decision.source('ack') or '?'} says no acknowledgement"
        record(session, ticket, "system", "autoreply_suppressed", now, reason=why)
        ack = f"no acknowledgement: {why}"
    else:
        template = (decision.ack_template if decision is not None else None) or "ack"
        articles = suggest(desk.policy.kb, msg.subject, msg.text) if desk.policy is not None else []
        if articles:
            record(session, ticket, "system", "kb_suggested", now, articles=[a.slug for a in articles])
        ack = _acknowledge(session, desk, ticket, msg, now, template=template, extra={"promise": promise, "articles": articles})
    if not ticket.spam:
        _announce(session, desk, ticket, decision, assigned, now, stored, _gate(desk, ticket, msg, now))
    text = f"new ticket {_ref(desk, ticket.id)}" + (
        "" if parent is None else f" (names {_ref(desk, parent.id)} without proof)" if referenced
        else f" (follow-up of closed {_ref(desk, parent.id)})")
    routed = ""
    if decision is not None and decision.matched:
        routed = f"; rules {', '.join(decision.matched)}: priority {ticket.priority}, team {ticket.team or '-'}, " \
                 f"assignee {ticket.assignee.login if ticket.assignee else '-'}"
    return Outcome("processed", f"{text}; {ack}{routed}", ticket.id)


def _gate(desk: Desk, ticket: Ticket, msg: InboundMessage, now: datetime) -> Gate:
    """The fan-out limit for this mail's notifications; the sender is keyed as the batch guard keys it."""
    return Gate(desk, ticket, msg.from_addr or msg.mail_from, msg.subject, now)


def _announce(session: Session, desk: Desk, ticket: Ticket, decision, assigned: list[str], now: datetime, stored,
              gate: Gate | None = None) -> None:
    """Who hears of a new ticket, one mail each: an agent the rules assigned gets "assigned";
    the others it concerns (its team while unassigned) "new_ticket"; the agents a rule's
    ``notify`` names get it even when they opted out of new_ticket; when nobody could be
    assigned, the team's lead is told why. ``gate``: the fan-out limit (:mod:`maildesk.outgoing.fanout`)."""
    told = set(_notify_assigned(session, desk, ticket, assigned, now, stored, decision, gate))
    others = [a for a in agents_on_ticket(session, desk, ticket) if a.login not in assigned]
    notify_agents(session, desk, ticket, "new_ticket", now, message=stored, recipients=others, gate=gate)
    told.update(a.login for a in others if reaches(a, "new_ticket"))
    _notify_extra(session, desk, ticket, decision, now, stored, told, gate)
    note_unassigned(session, desk, ticket, decision, now, stored)


def _notify_assigned(session: Session, desk: Desk, ticket: Ticket, logins: list[str], now: datetime, stored,
                     decision, gate: Gate | None = None) -> list[str]:
    """The agents the rules just assigned hear of it ("assigned"); returns who was told."""
    directory = desk.directory
    agents = [directory.agent(login) for login in logins if directory and directory.agent(login)]
    if not agents:
        return []
    rule = decision.source("assign") if decision is not None else None
    notify_agents(session, desk, ticket, "assigned", now, message=stored, recipients=agents,
                  actor=f"rule {rule}" if rule else "routing rules",
                  extra={"reason": decision.assign_reason if decision is not None else ""}, gate=gate)
    return [a.login for a in agents if reaches(a, "assigned")]


def _notify_extra(session: Session, desk: Desk, ticket: Ticket, decision, now: datetime, stored, told: set[str],
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
        notify_agents(session, desk, ticket, "new_ticket", now, message=stored, recipients=[agent], explicit=True,
                      extra={"rule": rule}, gate=gate)
    if not notify_addresses(session, desk, ticket, others, "rule_notify", now, message=stored, gate=gate):
        return
    for address in others:
        record(session, ticket, f"rule:{_notify_rule(desk, decision, address)}", "notified", now, to=address)


def _notify_rule(desk: Desk, decision, entry: str) -> str:
    """The first matched rule whose ``notify`` names ``entry``."""
    ruleset = desk.ruleset
    for name in decision.matched:
        rule = ruleset.rule(name) if ruleset is not None else None
        if rule is not None and entry in (rule.then.notify or ()):
            return name
    return "routing"


def _acknowledge(session: Session, desk: Desk, ticket: Ticket, msg: InboundMessage, now: datetime,
                 template: str = "ack", extra: dict | None = None) -> str:
    reason = suppression_reason(msg, desk.config.mail.addresses, desk.loop_id) or backscatter_reason(msg, desk.config.auth)
    address = ticket.requester.address
    if reason is None:
        reason = may_autoreply(session, address, now, desk.config.mail.autoreply_limit, desk.config.mail.autoreply_window)
    if reason is not None:
        record(session, ticket, "system", "autoreply_suppressed", now, reason=reason)
        return f"no acknowledgement: {reason}"
    status = status_url(session, desk.config, desk.secret, address)  # [web]: the customer's status page (maildesk/web/links.py)
    queue_mail(session, desk.mail, ticket, kind="ack", template=template, to=[(ticket.requester.name, address)],
               now=now, auto=True, answering=msg.message_id,
               extra={"promise": None, "articles": [], "status_url": status, **(extra or {})}, record_kind="autoreply")
    record_autoreply(session, address, now)
    record(session, ticket, "system", "acknowledged", now, to=address, template=template)
    desk.wake("outbox")
    return "acknowledgement queued"
