"""What every page needs: the templates, the signed-in viewer, CSRF checks, paging."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from maildesk.parse.subjects import format_ref
from maildesk.web.auth import COOKIE, csrf_ok
from maildesk.web.perms import Viewer, viewer_for
from maildesk.web.text import safe_html

__all__ = ["Page", "db", "desk_of", "env", "not_found", "page_of", "render", "require_csrf", "signed_in", "viewer_or_redirect"]


def _when(value) -> str:
    if not value:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _left(td) -> str:
    """A timedelta of business time as "3h 20m" (negative: "-1h 5m", overdue)."""
    if td is None:
        return "-"
    minutes = int(td.total_seconds() // 60)
    sign, minutes = ("-" if minutes < 0 else ""), abs(minutes)
    return f"{sign}{minutes // 60}h {minutes % 60:02d}m"


env = Environment(loader=PackageLoader("maildesk", "web/templates"), autoescape=select_autoescape(default=True, default_for_string=True),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
env.filters.update(when=_when, left=_left, safe_html=safe_html)


async def db(fn, *args, **kwargs):
    """Database work off the event loop (it is synchronous)."""
    return await run_in_threadpool(fn, *args, **kwargs)


def desk_of(request: Request):
    return request.app.state.desk


def render(request: Request, name: str, status: int = 200, **ctx) -> HTMLResponse:
    desk = desk_of(request)
    ctx.setdefault("viewer", getattr(request.state, "viewer", None))
    ctx.setdefault("csrf", (getattr(request.state, "session", None) or {}).get("csrf", ""))
    ctx.setdefault("ref", lambda n: format_ref(desk.config.mail.ticket_prefix, n))
    html = env.get_template(name).render(support_name=desk.config.mail.support_name, request=request, **ctx)
    return HTMLResponse(html, status_code=status)


def not_found() -> HTTPException:
    return HTTPException(404)


def signed_in(request: Request) -> Viewer | None:
    app = request.app
    data = app.state.sessions.read(request.cookies.get(COOKIE))
    viewer = viewer_for(desk_of(request).directory, data["login"]) if data else None
    request.state.session = data if viewer else None
    request.state.viewer = viewer
    return viewer


def viewer_or_redirect(request: Request) -> Viewer | RedirectResponse:
    viewer = signed_in(request)
    if viewer is None:
        return RedirectResponse("/signin", status_code=303)
    return viewer


async def require_csrf(request: Request) -> dict:
    """The submitted form, when its CSRF token is the session's; 403 otherwise."""
    form = await request.form()
    if not csrf_ok(request.state.session, form.get("csrf")):
        raise HTTPException(403, "the form's security token is missing or stale; reload the page and try again")
    return form


@dataclass
class Page:
    number: int
    size: int
    more: bool = False

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def page_of(request: Request) -> Page:
    raw = request.query_params.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1
    return Page(number, desk_of(request).config.web.page_size)
