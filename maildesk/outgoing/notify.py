"""Mail to agents about a ticket: new ticket, customer reply, assignment, internal note.

Recipients: the assignee; when unassigned, the members of the ticket's team; with
neither, every agent. Agents on leave (``available = false``) and agents who opted out
of that event kind (``notify_opt_out``) get nothing; an opt-out does not hold against a
rule's ``notify``, which names the agent on purpose. Each notification's Reply-To is the
agent's own signed token address, so their answer is authenticated and threads.

Who hears of what is decided here, in the transaction of the change. With
``desk.notices_later`` (the daemon's processing worker) the mail itself is rendered later,
by the delivery worker (:mod:`maildesk.outgoing.notices`), from a :class:`~maildesk.storage.models.Notice`
row written in the same transaction: nothing decided is lost, and a burst of customer
mail gets its acknowledgements without waiting for the agents' notifications.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from maildesk.desk import Desk
from maildesk.outgoing.fanout import Gate
from maildesk.outgoing.mailer import Letter, prepare, queue_mail, thread_refs
from maildesk.parse.quotes import REPLY_MARKER
from maildesk.parse.subjects import format_ref
from maildesk.storage.models import Blob, Participant, Ticket, TicketMessage
from maildesk.storage.writer import Writer, opened_here

__all__ = ["agents_on_ticket", "notify_addresses", "notify_agents", "reaches", "send_to_addresses", "send_to_agents"]


_HISTORY_CHARS = 2000  # of each earlier message: the template shows the first 200 (whitespace squeezed)
_AGENT_PARTICIPANTS = select(Participant.address).where(Participant.ticket_id == bindparam("ticket"),
                                                       Participant.role == "agent")
_HISTORY = (select(TicketMessage.id, TicketMessage.created_at, TicketMessage.from_name, TicketMessage.from_addr,
                   TicketMessage.kind, func.substr(TicketMessage.text, 1, _HISTORY_CHARS).label("text"))
            .where(TicketMessage.ticket_id == bindparam("ticket"), TicketMessage.kind.in_(("customer", "agent_reply", "note")),
                   TicketMessage.id < bindparam("before"))  # the history up to the message, also when rendered later
            .order_by(TicketMessage.id.desc()).limit(bindparam("limit")))
_BEFORE_ALL = 2**62
_BLOB = select(Blob.data).where(Blob.sha256 == bindparam("sha256"))


class _Att:
    def __init__(self, filename: str, content_type: str, data: bytes):
        self.filename, self.content_type, self.data = filename, content_type, data


def agents_on_ticket(session: Session, desk: Desk, ticket: Ticket) -> list:
    """The agents a ticket concerns: the assignee and agents who took part; while it is
    unassigned, also its team's members (every agent when it has no team)."""
    directory = desk.directory
    if directory is None:
        return []
    found = {}
    if ticket.assignee is not None and directory.agent(ticket.assignee.login):
        found[ticket.assignee.login] = directory.agent(ticket.assignee.login)
    for address in () if opened_here(session, ticket) else session.scalars(_AGENT_PARTICIPANTS, {"ticket": ticket.id}):
        agent = directory.agent_by_address(address)
        if agent is not None:
            found.setdefault(agent.login, agent)
    if ticket.assignee is None:  # unassigned: the whole team (or every agent) keeps an eye on it
        team = directory.team(ticket.team) if ticket.team else None
        for agent in directory.members(team) if team is not None else directory.agents:
            found.setdefault(agent.login, agent)
    return list(found.values())


def notify_agents(w: Writer, desk: Desk, ticket: Ticket, event: str, now: datetime, *,
                  message: TicketMessage | None = None, recipients: list | None = None, actor: str = "",
                  exclude: tuple[str, ...] = (), template: str = "notification", extra: dict | None = None,
                  explicit: bool = False, gate: Gate | None = None) -> int:
    """Queue one notification per agent (or record the notice for later); returns how many.
    ``explicit``: the recipients were named on purpose (a rule's ``notify``), so their opt-outs do not apply.
    ``gate``: the fan-out limit of the inbound mail that caused it (:mod:`maildesk.outgoing.fanout`)."""
    session = w.session
    if desk.directory is None or ticket.spam:
        return 0
    agents = recipients if recipients is not None else agents_on_ticket(session, desk, ticket)
    agents = [a for a in agents if a.login not in exclude and reaches(a, event, explicit)]
    if not agents or _held(w, gate, [a.login for a in agents], event):
        return 0
    if desk.notices_later:
        _later(w, ticket, event, now, message, template, actor, extra, agents=[a.login for a in agents])
        desk.wake("outbox")
    else:
        send_to_agents(w, desk, ticket, event, now, message, agents, actor, template, extra)
    return len(agents)


def reaches(agent, event: str, explicit: bool = False) -> bool:
    """Whether a notification of kind ``event`` goes to ``agent``: never while on leave; an
    opt-out counts unless the agent was named on purpose (``explicit``)."""
    return agent.available and (explicit or agent.wants(event))


def notify_addresses(w: Writer, desk: Desk, ticket: Ticket, addresses, event: str, now: datetime, *,
                     message: TicketMessage | None = None, template: str = "notification", extra: dict | None = None,
                     gate: Gate | None = None) -> int:
    """The same notification to plain addresses (not agents): no agent token, so no commands."""
    addresses = list(addresses)
    if not addresses or _held(w, gate, addresses, event):
        return 0
    if desk.notices_later:
        _later(w, ticket, event, now, message, template, "", extra, addresses=addresses)
        desk.wake("outbox")
    else:
        send_to_addresses(w, desk, ticket, addresses, event, now, message, template, extra)
    return len(addresses)


def _held(w: Writer, gate: Gate | None, recipients: list[str], event: str) -> bool:
    """True when the fan-out limit holds this notification back for the recipients' digests."""
    if gate is None or gate.admits(w):
        return False
    gate.hold(w, recipients, event)
    return True


def send_to_agents(w: Writer, desk: Desk, ticket: Ticket, event: str, now: datetime, message: TicketMessage | None,
                   agents: list, actor: str = "", template: str = "notification", extra: dict | None = None) -> None:
    """Render and queue the notification for each of ``agents`` (directory entries)."""
    session = w.session
    history = _history(session, desk, ticket, message)
    attachments = _forwardable(w, message, desk.config.workflow.notification_attachments_max)
    answering = message.message_id if message is not None else None
    refs = thread_refs(session, ticket, answering)
    held_back = _held_back(message, attachments)
    per_agent = desk.renderer.uses(template, "agent_name")  # else one rendering serves every agent
    letter: Letter | None = None
    message = _shown(desk, ticket, message)
    for agent in agents:
        context = _context(ticket, event, message, {"history": history, "actor": actor, "agent_name": agent.name,
                                                    "held_back": held_back, **(extra or {})})
        if letter is None or per_agent:
            letter = prepare(desk.mail, ticket, template, context, attachments)
        _queue(w, desk, ticket, (agent.name, agent.address), event, now, template, agent=agent.login,
               answering=answering, letter=letter, refs=refs)
    desk.wake("outbox")


def send_to_addresses(w: Writer, desk: Desk, ticket: Ticket, addresses: list[str], event: str, now: datetime,
                      message: TicketMessage | None, template: str = "notification", extra: dict | None = None) -> None:
    session = w.session
    answering = message.message_id if message is not None else None
    context = _context(ticket, event, _shown(desk, ticket, message),
                       {"history": [], "actor": "", "agent_name": "", "marker": "", "held_back": _held_back(message, ()),
                        **(extra or {})})
    letter = prepare(desk.mail, ticket, template, context)
    refs = thread_refs(session, ticket, answering)
    for address in addresses:
        _queue(w, desk, ticket, ("", address), event, now, template, answering=answering, letter=letter, refs=refs)
    desk.wake("outbox")


def _later(w: Writer, ticket: Ticket, event: str, now: datetime, message: TicketMessage | None, template: str,
           actor: str, extra: dict | None, agents: list[str] = (), addresses: list[str] = ()) -> None:
    w.notice({"ticket_id": ticket.id, "event": event, "template": template, "agents": list(agents),
              "addresses": list(addresses), "actor": actor, "extra": dict(extra or {}), "created_at": now, "done_at": None},
             message)


class _Cut:
    """A message as a notification shows it: its text cut to ``[workflow] notification_text_max``
    with a note of where to read the whole; every other attribute is the message's own."""

    def __init__(self, message: TicketMessage, text: str):
        self._message, self.text = message, text

    def __getattr__(self, name: str):
        return getattr(self._message, name)


def _shown(desk: Desk, ticket: Ticket, message: TicketMessage | None):
    limit = desk.config.workflow.notification_text_max
    if message is None or len(message.text or "") <= limit:
        return message
    ref = format_ref(desk.mail.prefix, ticket.id)
    note = (f"[maildesk: cut here; the message has {len(message.text):,} characters, a notification shows the first "
            f"{limit:,} ([workflow] notification_text_max). The whole text: ticket {ref}, `maildesk tickets show {ref}`"
            + ("; its attachments are listed below" if message.attachments else "") + ".]")
    return _Cut(message, message.text[:limit].rstrip() + "\n\n" + note)


def _context(ticket: Ticket, event: str, message: TicketMessage | None, extra: dict) -> dict:
    return {"event": event, "marker": REPLY_MARKER, "message": message,
            "assignee": ticket.assignee.name if ticket.assignee else None, **extra}


def _queue(w: Writer, desk: Desk, ticket: Ticket, to: tuple[str, str], event: str, now: datetime, template: str, *,
           letter: Letter, refs: tuple[str, ...], answering: str | None, agent: str | None = None) -> None:
    queue_mail(w, desk.mail, ticket, kind="notification", template=template, to=[to], now=now, auto=True,
               agent=agent, record=False, answering=answering, letter=letter, refs=refs,
               headers={"Auto-Submitted": "auto-generated", "X-Maildesk-Event": event})


def _forwardable(w: Writer, message: TicketMessage | None, budget: int) -> tuple:
    """The message's attachments to copy into notifications, smallest first, within ``budget`` bytes."""
    out = []
    for a in sorted(message.attachments if message is not None else (), key=lambda a: a.size):
        if a.size > budget:
            break
        budget -= a.size
        data = w.blob(a.sha256)
        if data is None:
            data = w.session.execute(_BLOB, {"sha256": a.sha256}).scalar_one()
        out.append(_Att(a.filename, a.content_type, data))
    return tuple(out)


def _held_back(message: TicketMessage | None, forwarded: tuple) -> list[str]:
    """The message's attachments that are not copied into this notification (over the budget)."""
    names = [a.filename for a in forwarded]
    held = []
    for a in message.attachments if message is not None else ():
        if a.filename in names:
            names.remove(a.filename)
        else:
            held.append(a.filename or "(unnamed)")
    return held


def _history(session: Session, desk: Desk, ticket: Ticket, current: TicketMessage | None) -> list[dict]:
    limit = desk.config.workflow.history_in_notifications
    if opened_here(session, ticket):
        return []
    rows = session.execute(_HISTORY, {"ticket": ticket.id, "limit": limit + 1, "before": _BEFORE_ALL if current is None
                                      or current.id is None else current.id})
    out = []
    for m in rows:
        if current is not None and m.id == current.id:
            continue
        out.append({"when": f"{m.created_at:%Y-%m-%d %H:%M}", "who": m.from_name or m.from_addr, "kind": m.kind,
                    "text": " ".join((m.text or "").split())})
    return list(reversed(out[:limit]))
