"""One ticket's page: the whole conversation (customer mail, replies, internal notes,
how each mail was threaded), its events, its attachments, and the forms of
:mod:`maildesk.web.actions`. A ticket the viewer may not see is 404."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from maildesk.storage.models import Blob, MessageAttachment, Ticket, TicketMessage
from maildesk.tickets.views import merged_into, ticket_detail
from maildesk.web.common import db, desk_of, not_found, render, viewer_or_redirect

__all__ = ["attachment", "load_visible", "page"]

THREADED = {"token": "its signed reply address", "header": "In-Reply-To/References", "subject": "the [ref] in its subject",
            "new": "none (it opened this ticket)", None: ""}


def load_visible(session, desk, viewer, number: int) -> Ticket | None:
    ticket = session.get(Ticket, number)
    return ticket if ticket is not None and viewer.can_see(ticket) else None


def _detail(desk, viewer, number: int) -> dict | None:
    with desk.store.read() as session:
        ticket = load_visible(session, desk, viewer, number)
        if ticket is None:
            return None
        detail = ticket_detail(session, ticket, desk.config.mail.ticket_prefix)
        ids = [m["id"] for m in detail["messages"]]
        html = dict(session.execute(select(TicketMessage.id, TicketMessage.html).where(TicketMessage.id.in_(ids))).all()) if ids else {}
        files: dict[int, list] = {}
        for a in session.scalars(select(MessageAttachment).where(MessageAttachment.message_id.in_(ids)).order_by(MessageAttachment.id)):
            files.setdefault(a.message_id, []).append({"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size})
        for m in detail["messages"]:
            m["html"] = html.get(m["id"])
            m["files"] = files.get(m["id"], [])
            m["threaded"] = THREADED.get(m["thread_via"], m["thread_via"])
        return detail


async def page(request: Request):
    viewer = viewer_or_redirect(request)
    if not hasattr(viewer, "login"):
        return viewer
    number = request.path_params["number"]
    desk = desk_of(request)
    detail = await db(_detail, desk, viewer, number)
    if detail is None:
        raise not_found()
    directory = desk.directory
    return render(request, "ticket.html", title=f"{detail['ref']} {detail['subject']}", t=detail, number=number,
                  agents=[a.login for a in directory.agents], teams=[t.name for t in directory.teams],
                  notice=request.query_params.get("done", ""))


def _file(desk, viewer, number: int, attachment_id: int):
    with desk.store.read() as session:
        ticket = load_visible(session, desk, viewer, number)
        if ticket is None:
            return None
        a = session.get(MessageAttachment, attachment_id)
        if a is None:
            return None
        owner = session.scalar(select(TicketMessage.ticket_id).where(TicketMessage.id == a.message_id))
        if owner != ticket.id and owner not in merged_into(session, ticket.id):
            return None
        data = session.scalar(select(Blob.data).where(Blob.sha256 == a.sha256))
        return a.filename, data


async def attachment(request: Request):
    """The stored bytes, always as a download (never rendered in the page's origin)."""
    viewer = viewer_or_redirect(request)
    if not hasattr(viewer, "login"):
        return viewer
    found = await db(_file, desk_of(request), viewer, request.path_params["number"], request.path_params["attachment"])
    if found is None or found[1] is None:
        raise not_found()
    filename, data = found
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename) or "attachment"
    return Response(bytes(data), media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff"})
