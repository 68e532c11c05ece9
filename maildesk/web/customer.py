"""A customer's status page, reached only by the signed link in their acknowledgements
(:mod:`maildesk.outgoing.statuslinks`): their tickets (as requester), each with its public
conversation (their mail and what maildesk sent them: never internal notes, never an
agent's address, never mail kept unverified), and the knowledge base, searchable. The link
grants nothing else; a forged, altered or revoked one answers 404."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request

from maildesk.outgoing.statuslinks import check_status_token
from maildesk.storage.models import Contact, Ticket, TicketMessage
from maildesk.web.common import db, desk_of, not_found, page_of, render

__all__ = ["article", "status"]

def _public(m: TicketMessage, address: str, support_name: str) -> dict | None:
    """What the customer wrote and what was sent to them; nothing else."""
    if m.direction == "in" and m.kind != "unverified" and m.from_addr == address:
        who = "You"
    elif m.direction == "out" and address in (*(m.to or []), *(m.cc or [])):
        who = f"{m.from_name} ({support_name})" if m.kind == "agent_reply" and m.from_name else support_name
    else:
        return None  # internal notes, other people's mail, anything not meant for them
    return {"who": who, "at": m.created_at, "subject": m.subject, "text": m.text}


def _tickets(desk, token: str, page, open_number: int | None):
    with desk.store.read() as session:
        address = check_status_token(session, desk.secret, token)
        if address is None:
            return None
        contact = session.scalar(select(Contact).where(Contact.address == address))
        if contact is None:
            return address, [], None
        q = (select(Ticket).where(Ticket.requester_id == contact.id).order_by(Ticket.id.desc())
             .limit(page.size + 1).offset(page.offset))
        tickets = list(session.scalars(q))
        page.more = len(tickets) > page.size
        rows = [{"id": t.id, "subject": t.subject, "status": t.status, "created_at": t.created_at, "updated_at": t.updated_at}
                for t in tickets[: page.size]]
        conversation = None
        if open_number is not None:
            t = session.get(Ticket, open_number)
            if t is None or t.requester_id != contact.id:
                return address, rows, False
            msgs = session.scalars(select(TicketMessage).where(TicketMessage.ticket_id == t.id)
                                   .order_by(TicketMessage.created_at, TicketMessage.id))
            conversation = {"id": t.id, "subject": t.subject, "status": t.status,
                            "messages": [p for p in (_public(m, address, desk.config.mail.support_name) for m in msgs) if p]}
        return address, rows, conversation


def _articles(desk, q: str):
    kb = desk.policy.kb if desk.policy is not None else ()
    words = q.lower().split()
    return [a for a in kb if all(w in f"{a.title}\n{a.text}\n{' '.join(a.keywords)}".lower() for w in words)]


async def status(request: Request):
    token = request.path_params["token"]
    desk = desk_of(request)
    raw = request.query_params.get("ticket", "")
    number = int(raw) if raw.isdigit() and len(raw) < 18 else None
    page = page_of(request)
    found = await db(_tickets, desk, token, page, number)
    if found is None or found[2] is False:
        raise not_found()
    address, rows, conversation = found
    q = (request.query_params.get("q") or "").strip()[:200]
    return render(request, "status.html", viewer=None, title="Your requests", address=address, tickets=rows, page=page,
                  conversation=conversation, token=token, q=q, articles=_articles(desk, q))


async def article(request: Request):
    token = request.path_params["token"]
    desk = desk_of(request)
    ok = await db(lambda: _tickets(desk, token, page_of(request), None))
    if ok is None:
        raise not_found()
    slug = request.path_params["slug"]
    found = next((a for a in (desk.policy.kb if desk.policy is not None else ()) if a.slug == slug), None)
    if found is None:
        raise not_found()
    return render(request, "article.html", viewer=None, title=found.title, article=found, token=token)
