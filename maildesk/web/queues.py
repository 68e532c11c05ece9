"""The agents' ticket lists: my queue, team queue, unassigned, SLA at risk, search.

Every list holds only tickets the viewer may see (:mod:`maildesk.web.perms`) and is paged
(``[web] page_size``)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.requests import Request

from maildesk.sla.clock import clock_of
from maildesk.sla.deadlines import evaluate
from maildesk.storage.models import Agent as AgentRow
from maildesk.storage.models import Ticket
from maildesk.tickets.search import TicketQuery, search_tickets
from maildesk.vocab import OPEN_STATES
from maildesk.web.common import Page, db, desk_of, not_found, page_of, render, viewer_or_redirect

__all__ = ["QUEUES", "search", "sla"]

STATUSES = ("new", "open", "pending", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")


def _rows(session, q, page: Page) -> list[Ticket]:
    q = q.options(selectinload(Ticket.requester), selectinload(Ticket.assignee)).limit(page.size + 1).offset(page.offset)
    tickets = list(session.scalars(q))
    page.more = len(tickets) > page.size
    return tickets[: page.size]


def _queue(desk, viewer, which: str, team: str | None, page: Page) -> list[Ticket]:
    with desk.store.read() as session:
        q = select(Ticket).where(viewer.visible(), Ticket.status.in_(OPEN_STATES), Ticket.merged_into_id.is_(None))
        if which == "mine":
            q = q.where(Ticket.assignee_id.in_(select(AgentRow.id).where(AgentRow.login == viewer.login)))
        elif which == "team":
            q = q.where(Ticket.team == team) if team else q.where(Ticket.team.in_(viewer.teams))
        else:  # unassigned
            q = q.where(Ticket.assignee_id.is_(None))
            if team:
                q = q.where(Ticket.team == team)
        q = q.order_by(Ticket.updated_at.desc(), Ticket.id.desc())
        tickets = _rows(session, q, page)
        session.expunge_all()
        return tickets


def _queue_view(which: str, title: str):
    async def view(request: Request):
        viewer = viewer_or_redirect(request)
        if not hasattr(viewer, "login"):
            return viewer
        team = request.query_params.get("team") or None
        if team is not None and not viewer.may_team(team):
            raise not_found()
        page = page_of(request)
        tickets = await db(_queue, desk_of(request), viewer, which, team, page)
        return render(request, "queue.html", title=title, which=which, team=team, tickets=tickets, page=page,
                      teams=viewer.teams if not viewer.admin else [t.name for t in desk_of(request).directory.teams])
    return view


QUEUES = {"mine": _queue_view("mine", "My queue"), "team": _queue_view("team", "Team queue"),
          "unassigned": _queue_view("unassigned", "Unassigned")}


def _at_risk(desk, viewer, page: Page, now: datetime) -> list[dict]:
    sla = desk.sla
    if sla is None:
        return []
    out = []
    with desk.store.read() as session:
        q = (select(Ticket).where(viewer.visible(), Ticket.status.in_(OPEN_STATES), Ticket.merged_into_id.is_(None), Ticket.spam.is_(False))
             .options(selectinload(Ticket.requester), selectinload(Ticket.assignee)).order_by(Ticket.id).limit(5000))
        for t in session.scalars(q):
            policy = sla.policy_for(t.priority, t.team, t.sla_policy)
            for target, st in evaluate(policy, t.priority, clock_of(t), now).items():
                if st.state in ("breached", "warning"):
                    out.append({"ticket": t, "target": target, "state": st.state, "due": st.due, "left": st.remaining})
        session.expunge_all()
    out.sort(key=lambda r: (r["state"] != "breached", r["left"]))
    page.more = len(out) > page.offset + page.size
    return out[page.offset: page.offset + page.size]


async def sla(request: Request):
    viewer = viewer_or_redirect(request)
    if not hasattr(viewer, "login"):
        return viewer
    page = page_of(request)
    desk = desk_of(request)
    rows = await db(_at_risk, desk, viewer, page, desk.clock())
    return render(request, "sla.html", title="SLA at risk", rows=rows, page=page)


def _date(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
    except ValueError:
        return None


def _search(desk, viewer, f: TicketQuery, page: Page) -> list[Ticket]:
    with desk.store.read() as session:
        q = search_tickets(session, f).where(viewer.visible())
        tickets = _rows(session, q, page)
        session.expunge_all()
        return tickets


async def search(request: Request):
    """The filters of ``maildesk tickets list`` as a form (GET: bookmarkable, no CSRF needed)."""
    viewer = viewer_or_redirect(request)
    if not hasattr(viewer, "login"):
        return viewer
    p = request.query_params
    form = {k: (p.get(k) or "").strip() for k in ("text", "requester", "assignee", "team", "tag", "priority", "status",
                                                   "created_since", "created_until")}
    f = TicketQuery(requester=form["requester"] or None, assignee=form["assignee"] or None, team=form["team"] or None,
                    tag=form["tag"] or None, priority=form["priority"] if form["priority"] in PRIORITIES else None,
                    status=form["status"] if form["status"] in STATUSES else None, created_since=_date(form["created_since"]),
                    created_until=_date(form["created_until"]), breached=p.get("breached") == "1", text=form["text"] or None)
    page = page_of(request)
    searched = any(form.values()) or f.breached
    tickets = await db(_search, desk_of(request), viewer, f, page) if searched else []
    query = urlencode({**{k: v for k, v in form.items() if v}, **({"breached": "1"} if f.breached else {})})
    return render(request, "search.html", title="Search", form=form, breached=f.breached, tickets=tickets, page=page,
                  searched=searched, statuses=STATUSES, priorities=PRIORITIES, query=query)
