"""What one parsed inbound message does to the tickets: the decision order, as data.

:data:`STAGES` lists, in order, every step an inbound message goes through (docs/pipeline.md,
"Inbound stages", describes them). Each stage reads the :class:`Inbound` context and either
returns an :class:`Outcome`, which ends the handling, or None to pass the message on; some
stages only add to the context (the verified reply tokens and the sender's identity, the
ticket it threads to). The last stage always decides.

:func:`handle` runs the table inside the caller's transaction (a savepoint per message) and
never commits. Control flow is not an error: our own mail, a duplicate, a bounce or a
suppressed auto-reply are outcomes, not exceptions. Everything is written through the
:class:`~maildesk.storage.writer.Writer` the pipeline hands in (immediate, or a batch that
may cut or isolate the message before it changes anything).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select

from maildesk.desk import Desk
from maildesk.outgoing.tokens import ReplyToken
from maildesk.parse.message import InboundMessage
from maildesk.parse.quotes import new_text
from maildesk.parse.subjects import find_refs
from maildesk.process import customermail
from maildesk.process.agentmail import handle_agent_mail
from maildesk.process.authz import Identity, identify
from maildesk.process.autoreply import LOOP_HEADER
from maildesk.process.bounces import handle_bounce, is_bounce_candidate
from maildesk.process.correlate import ThreadMatch, find_ticket, first_valid_token, is_participant, verify_tokens
from maildesk.process.customermail import ref
from maildesk.process.outcome import Outcome
from maildesk.process.survey import digit_rating, record_rating
from maildesk.storage.models import InboxMail, MessageRef, Outbox
from maildesk.storage.writer import Writer
from maildesk.tickets.state import add_message, record
from maildesk.vocab import DONE_STATES

__all__ = ["STAGES", "Inbound", "Outcome", "handle"]

log = logging.getLogger("maildesk.pipeline")
_STORED_ON = select(MessageRef.ticket_id).where(MessageRef.message_id == bindparam("mid")).limit(1)
_SENT_BY_US = select(Outbox.ticket_id).where(Outbox.message_id == bindparam("mid")).limit(1)


@dataclass
class Inbound:
    """One message on its way through :data:`STAGES`, and what the stages found out so far."""

    w: Writer  # everything is written through it
    desk: Desk
    row: InboxMail  # the inbox row's (id, attempts)
    msg: InboundMessage
    now: datetime
    # the reply tokens among the recipients, each verified once: (token, what it says, or None if forged)
    tokens: tuple[tuple[str, ReplyToken | None], ...] = ()
    who: Identity | None = None  # the sender: an authenticated agent, or one claimed, or neither
    match: ThreadMatch | None = None  # the ticket the message threads to, if any

    @property
    def session(self):
        return self.w.session


Stage = Callable[[Inbound], Outcome | None]


def handle(w: Writer, desk: Desk, row: InboxMail, msg: InboundMessage, now: datetime) -> Outcome:
    """Run :data:`STAGES` in order until one decides."""
    # a batch refuses a message that depends on it before anything is read or changed
    w.guard_message(msg.from_addr or msg.mail_from, msg.message_id, msg.thread_ids,
                    find_refs(msg.subject, desk.config.mail.ticket_prefix))
    ctx = Inbound(w, desk, row, msg, now)
    for _name, stage in STAGES:
        outcome = stage(ctx)
        if outcome is not None:
            return outcome
    raise AssertionError("the last inbound stage always decides")


# -- the stages, in order -------------------------------------------------------------------

def own_mail(ctx: Inbound) -> Outcome | None:
    """Mail this installation sent, seen again (Sent folder, a verbatim bounce, a loop)."""
    ours = ctx.desk.loop_id in ctx.msg.headers.get(LOOP_HEADER.lower(), ())
    row = _lookup(ctx.w, "outbox", _SENT_BY_US, ctx.msg.message_id) if ctx.msg.message_id else None
    if row is None and not ours:
        return None
    return Outcome("processed", "our own outgoing mail seen again; ignored (no ticket opened)",
                   row.ticket_id if row is not None else None)


def duplicate(ctx: Inbound) -> Outcome | None:
    """A Message-ID already stored (the same mail through another server or mailbox)."""
    seen = _lookup(ctx.w, "ref", _STORED_ON, ctx.msg.message_id) if ctx.msg.message_id else None
    if seen is None:
        return None
    return Outcome("duplicate", f"Message-ID already stored on {ref(ctx.desk, seen.ticket_id)}; not stored again",
                   seen.ticket_id)


def bounce(ctx: Inbound) -> Outcome | None:
    """A delivery report, or mail from the null sender: about mail we sent (runs alone in a batch)."""
    if not is_bounce_candidate(ctx.msg, ctx.desk.config.mail.addresses):
        return None
    ctx.w.isolate("delivery report or null-sender mail")
    return handle_bounce(ctx.w, ctx.desk, ctx.msg, ctx.now)


def token(ctx: Inbound) -> None:
    """Verify the recipients' reply tokens, once, and identify the sender (an agent's own
    token, or a trusted DKIM/SPF pass); mail from an agent's address runs alone in a batch."""
    desk = ctx.desk
    ctx.tokens = verify_tokens(ctx.msg, secret=desk.secret, support=desk.config.mail.addresses)
    ctx.who = identify(ctx.msg, first_valid_token(ctx.tokens), desk.directory, desk.config.auth.trusted_authserv_ids,
                       desk.config.auth.dkim_domains)
    if ctx.who.claimed is not None:
        ctx.w.isolate("mail from an agent's address")


def thread(ctx: Inbound) -> None:
    """Find the ticket: a valid token, then our Message-IDs in the headers, then a subject reference."""
    ctx.match = match = find_ticket(ctx.w, ctx.msg, tokens=ctx.tokens, prefix=ctx.desk.config.mail.ticket_prefix,
                                    sender_is_agent=ctx.who.is_agent)
    ctx.w.guard_ticket(match.ticket)
    if match.ticket is not None and (match.ticket.status in DONE_STATES
                                     or (match.token is not None and match.token.kind == "s")):
        ctx.w.isolate("may be a survey answer or a follow-up")


def survey(ctx: Inbound) -> Outcome | None:
    """A click on a survey link (signed score token) or a digit-only reply to a resolved ticket."""
    match, msg = ctx.match, ctx.msg
    ticket = match.ticket
    if ticket is None or ctx.who.is_agent:
        return None
    if match.token is not None and match.token.kind == "s":
        score, comment = match.token.score, new_text(msg.text)
        via = "survey link"
    elif match.verified and ticket.status in DONE_STATES and (found := digit_rating(msg.text)) is not None:
        (score, comment), via = found, "digit reply"
    else:
        return None
    add_message(ctx.w, ticket, msg, inbox_id=ctx.row.id, kind="rating", via=match.via, now=ctx.now)
    return Outcome("processed", record_rating(ctx.w, ctx.desk, ticket, score, comment, via, ctx.now), ticket.id)


def agent_claim(ctx: Inbound) -> None:
    """Mail that claims an agent's address without proof is a customer's, and a security event."""
    who = ctx.who
    if who.claimed is not None and not who.is_agent:
        ctx.match.security.append(f"mail claims to be from agent {who.claimed.login} but is not authenticated (no valid "
                                  "agent token, no trusted DKIM/SPF pass): treated as a customer mail, no command was run")


def agent_mail(ctx: Inbound) -> Outcome | None:
    """An authenticated agent on a ticket: commands, a note, or a reply relayed to the customer."""
    if not ctx.who.is_agent or ctx.match.ticket is None:
        return None
    return _secured(ctx, handle_agent_mail(ctx.w, ctx.desk, ctx.row, ctx.msg, ctx.match.ticket, ctx.who.agent,
                                           ctx.who.how, ctx.now))


def new(ctx: Inbound) -> Outcome | None:
    """No ticket found, or a closed one: a new ticket (a follow-up of the closed one)."""
    ticket = ctx.match.ticket
    if ticket is not None and ticket.status != "closed":
        return None
    return _secured(ctx, customermail.new_ticket(ctx.w, ctx.desk, ctx.row, ctx.msg, ctx.match, ctx.now))


def reply(ctx: Inbound) -> Outcome | None:
    """Mail that proves its place on the ticket (a token, or our Message-ID sent to its sender)."""
    if not ctx.match.verified:
        return None
    return _secured(ctx, customermail.reply(ctx.w, ctx.desk, ctx.row, ctx.msg, ctx.match, ctx.now))


def unverified(ctx: Inbound) -> Outcome | None:
    """A participant's address on mail that proves nothing: kept on the ticket, marked, nothing else."""
    if not is_participant(ctx.session, ctx.match.ticket.id, ctx.msg.from_addr):
        return None
    return _secured(ctx, customermail.unverified(ctx.w, ctx.desk, ctx.row, ctx.msg, ctx.match, ctx.now))


def referenced(ctx: Inbound) -> Outcome:
    """A stranger naming someone else's ticket or mail: a ticket of their own, linked; the other one untouched."""
    return _secured(ctx, customermail.new_ticket(ctx.w, ctx.desk, ctx.row, ctx.msg, ctx.match, ctx.now, referenced=True))


STAGES: tuple[tuple[str, Stage], ...] = (
    ("own mail", own_mail),
    ("duplicate", duplicate),
    ("bounce", bounce),
    ("token", token),
    ("thread", thread),
    ("survey", survey),
    ("agent claim", agent_claim),
    ("agent mail", agent_mail),
    ("new", new),
    ("reply", reply),
    ("unverified", unverified),
    ("referenced", referenced),
)


# -- helpers ----------------------------------------------------------------------------------

def _secured(ctx: Inbound, outcome: Outcome) -> Outcome:
    """Record the mail's security problems on the ticket it went to: at most ``[mail]
    max_security_events`` events, then one that counts the rest."""
    cap, match = ctx.desk.config.mail.max_security_events, ctx.match
    for reason in match.security[:cap]:
        record(ctx.w, outcome.ticket_id, "system", "security", ctx.now, reason=reason, inbox=ctx.row.id,
               sender=ctx.msg.from_addr)
    if len(match.security) > cap:
        more = len(match.security) - cap
        record(ctx.w, outcome.ticket_id, "system", "security", ctx.now, inbox=ctx.row.id, sender=ctx.msg.from_addr,
               more=more, reason=f"and {more} more security problem(s) in this mail, not recorded one by one "
                                 f"([mail] max_security_events = {cap})")
    return outcome


def _lookup(w: Writer, kind: str, query, mid: str):
    """A row by Message-ID: from what the writer read ahead, else from the database."""
    hit, row = w.known(kind, mid)
    if hit:
        return None if row is None else _Row(*row)
    return w.session.execute(query, {"mid": mid}).first()


class _Row:
    __slots__ = ("ticket_id",)

    def __init__(self, ticket_id):
        self.ticket_id = ticket_id
