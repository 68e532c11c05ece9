"""Finding tickets: the filters of `maildesk tickets list` as one SQLAlchemy query, and
full-text search over the indexes of migration 0005 (SQLite FTS5, PostgreSQL tsvector).

Text search matches a ticket when every word of the query appears in its subject, its
requester's name, or one of its messages (subject and text; an HTML-only mail's text is
the text maildesk made from its HTML). ``public_only`` leaves internal notes out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, cast, exists, false, func, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB

from maildesk.storage.models import Agent, Contact, Event, Ticket, TicketMessage
from maildesk.vocab import OPEN_STATES

__all__ = ["TicketQuery", "fts5_query", "search_tickets"]

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class TicketQuery:
    requester: str | None = None  # an address, or a domain ("acme.example" or "@acme.example")
    assignee: str | None = None  # login
    team: str | None = None
    tag: str | None = None
    priority: str | None = None
    status: str | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None
    updated_since: datetime | None = None
    updated_until: datetime | None = None
    breached: bool = False
    text: str | None = None
    public_only: bool = False
    limit: int = 200


def fts5_query(words: str) -> str | None:
    """Every word quoted (FTS5 syntax characters in the input mean nothing), all required."""
    tokens = _WORD.findall(words)
    return " ".join(f'"{t}"' for t in tokens) or None


def _text_match(dialect: str, words: str, public_only: bool):
    if dialect == "sqlite":
        q = fts5_query(words)
        if q is None:
            return false()
        public = " AND public = 1" if public_only else ""
        ids = text(f"SELECT rowid FROM search_tickets WHERE search_tickets MATCH :q UNION "
                   f"SELECT ticket_id FROM search_messages WHERE search_messages MATCH :q{public}").bindparams(q=q)
        return Ticket.id.in_(ids.columns(literal_column("rowid")))
    tsq = func.plainto_tsquery(literal_column("'simple'::regconfig"), words)

    def vec(*cols):
        expr = func.coalesce(cols[0], "")
        for c in cols[1:]:
            expr = expr + " " + func.coalesce(c, "")
        return func.to_tsvector(literal_column("'simple'::regconfig"), expr)

    msgs = select(TicketMessage.ticket_id).where(vec(TicketMessage.subject, TicketMessage.text).op("@@")(tsq))
    if public_only:
        msgs = msgs.where(TicketMessage.direction != "int")
    names = select(Contact.id).where(vec(Contact.name).op("@@")(tsq))
    return or_(Ticket.id.in_(msgs), vec(Ticket.subject).op("@@")(tsq), Ticket.requester_id.in_(names))


def _tag(dialect: str, tag: str):
    if dialect == "sqlite":
        return text("EXISTS (SELECT 1 FROM json_each(tickets.tags) WHERE json_each.value = :tag)").bindparams(tag=tag)
    return cast(Ticket.tags, JSONB).contains([tag])


def search_tickets(session, f: TicketQuery) -> Select:
    """The query for ``f``, newest first."""
    dialect = session.get_bind().dialect.name
    q = select(Ticket)
    conds = []
    if f.requester:
        r = f.requester.strip().lower()
        addr = select(Contact.id).where(Contact.address == r) if "@" in r and not r.startswith("@") else \
            select(Contact.id).where(func.lower(Contact.address).like("%@" + r.lstrip("@").replace("%", r"\%").replace("_", r"\_"), escape="\\"))
        conds.append(Ticket.requester_id.in_(addr))
    if f.assignee:
        conds.append(Ticket.assignee_id.in_(select(Agent.id).where(Agent.login == f.assignee)))
    for col, value in ((Ticket.team, f.team), (Ticket.priority, f.priority), (Ticket.status, f.status)):
        if value:
            conds.append(col == value)
    for col, lo, hi in ((Ticket.created_at, f.created_since, f.created_until), (Ticket.updated_at, f.updated_since, f.updated_until)):
        if lo:
            conds.append(col >= lo)
        if hi:
            conds.append(col < hi)
    if f.tag:
        conds.append(_tag(dialect, f.tag))
    if f.breached:
        conds.append(and_(Ticket.status.in_(OPEN_STATES), exists().where(Event.ticket_id == Ticket.id, Event.kind == "sla_breach")))
    if f.text:
        conds.append(_text_match(dialect, f.text, f.public_only))
    return q.where(*conds).order_by(Ticket.id.desc()).limit(f.limit)
