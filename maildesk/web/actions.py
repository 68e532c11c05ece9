"""The ticket page's forms: reply, internal note, status, priority, assignee, team, tags.

Each form becomes the ``#command`` lines and text an agent would write in a mail and goes
through the same code (:func:`maildesk.process.agentmail.handle_agent_mail`): the same
checks, the same events with ``agent:<login>`` as actor, the same mail to the customer,
threaded the same way. Only what the viewer may see can be changed (else 404), and every
form carries the session's CSRF token.
"""

from __future__ import annotations

from pathlib import PurePath
from types import SimpleNamespace
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from maildesk.parse.message import InboundMessage
from maildesk.parse.mimewalk import Attachment
from maildesk.parse.subjects import format_ref
from maildesk.process.agentmail import handle_agent_mail
from maildesk.process.commands import parse_commands
from maildesk.storage.models import Ticket
from maildesk.storage.writer import Writer
from maildesk.vocab import COMMAND_STATUSES, PRIORITIES
from maildesk.web.common import db, desk_of, not_found, require_csrf, viewer_or_redirect

__all__ = ["act"]

MAX_TEXT = 200_000


def _lines(form, directory) -> list[str]:
    """The #command lines for the update form's fields that changed (empty: unchanged)."""
    lines = []
    status, priority = form.get("status") or "", form.get("priority") or ""
    assignee, team = form.get("assignee") or "", form.get("team") or ""
    if status:
        if status not in COMMAND_STATUSES:
            raise HTTPException(400, f"unknown status {status!r}")
        lines.append(f"#status {status}")
    if priority:
        if priority not in PRIORITIES:
            raise HTTPException(400, f"unknown priority {priority!r}")
        lines.append(f"#priority {priority}")
    if assignee:
        if directory.agent(assignee) is None:
            raise HTTPException(400, f"no agent {assignee!r}")
        lines.append(f"#assign {assignee}")
    if team:
        if directory.team(team) is None:
            raise HTTPException(400, f"no team {team!r}")
        lines.append(f"#team {team}")
    lines += [f"#tag {t}" for t in (form.get("add_tags") or "").split()]
    lines += [f"#untag {t}" for t in (form.get("remove_tags") or "").split()]
    return lines


async def _files(form, limit: int) -> tuple:
    """The reply form's files as attachments (``[mail] max_attachment_size`` in total)."""
    out, total = [], 0
    for upload in form.getlist("files"):
        if not hasattr(upload, "read") or not upload.filename:
            continue
        data = await upload.read()
        total += len(data)
        if total > limit:
            raise HTTPException(413, f"the files are larger than [mail] max_attachment_size ({limit} bytes)")
        name = "".join(c for c in PurePath(upload.filename.replace("\\", "/")).name if c.isprintable())[:200] or "attachment"
        out.append(Attachment(filename=name, content_type=upload.content_type or "application/octet-stream", data=data))
    return tuple(out)


def _run(desk, viewer, number: int, text: str, files: tuple = ()) -> str | None:
    """Apply ``text`` (commands, then a note or a reply) as the viewer; None when the ticket is not theirs to see."""
    now = desk.clock()
    agent = viewer.agent
    with desk.store.transaction() as session:
        ticket = session.get(Ticket, number, with_for_update=True)
        if ticket is None or not viewer.can_see(ticket):
            return None
        support = ticket.support_address or desk.config.mail.primary
        ref = format_ref(desk.config.mail.ticket_prefix, ticket.id)
        msg = InboundMessage(message_id=None, in_reply_to=(), references=(), from_addr=agent.address, from_name=agent.name,
                             to=(("", support),), cc=(), reply_to=(), subject=f"Re: [{ref}] {ticket.subject}", date=now, text=text,
                             html=None, attachments=files, headers={}, source="web")
        row = SimpleNamespace(id=None)  # no inbox row: the change did not come by mail
        outcome = handle_agent_mail(Writer(session), desk, row, msg, ticket, agent, "web", now, text=text)
        return outcome.text


async def act(request: Request):
    viewer = viewer_or_redirect(request)
    if not hasattr(viewer, "login"):
        return viewer
    form = await require_csrf(request)
    number, kind = request.path_params["number"], request.path_params["action"]
    desk = desk_of(request)
    body = (form.get("text") or "").replace("\r\n", "\n").strip()
    if len(body) > MAX_TEXT:
        raise HTTPException(413, f"the text is longer than {MAX_TEXT} characters")
    if kind == "reply":
        if not body:
            raise HTTPException(400, "the reply is empty")
        status = [f"#status {form['status']}"] if form.get("status") in COMMAND_STATUSES else []
        text = "\n".join([*status, "", body])  # as in a mail, a first line starting with # is read as a command
    elif kind == "note":
        if not body:
            raise HTTPException(400, "the note is empty")
        text = f"#note\n\n{body}"
    elif kind == "update":
        lines = _lines(form, desk.directory)
        if not lines:
            return RedirectResponse(f"/t/{number}?done=" + quote("nothing changed"), status_code=303)
        text = "\n".join(lines)
    else:
        raise not_found()
    parsed = parse_commands(text, desk.config.mail.ticket_prefix)
    if parsed.errors:
        raise HTTPException(400, "; ".join(parsed.errors))
    files = await _files(form, desk.config.mail.max_attachment_size) if kind == "reply" else ()
    detail = await db(_run, desk, viewer, number, text, files)
    if detail is None:
        raise not_found()
    return RedirectResponse(f"/t/{number}?done=" + quote(detail[:300]), status_code=303)
