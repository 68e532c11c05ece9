"""The Starlette application: routes, security headers, sign-in pages, 404s.

Every response says ``Content-Security-Policy`` (scripts only from this origin, so no
inline script runs; the report page also allows its own inline styles and data: charts),
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (links hold
tokens) and ``Cache-Control: no-store``. Pages read without JavaScript.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from maildesk.web import actions, customer, queues, reports, ticket
from maildesk.web.auth import COOKIE, PRE_COOKIE, Sessions, redeem_link, request_link
from maildesk.web.common import db, desk_of, env, render, require_csrf, signed_in

__all__ = ["CSP", "build_app"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
STATIC = Path(__file__).parent / "static"


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for name, value in ((b"content-security-policy", CSP), (b"x-content-type-options", "nosniff"),
                                    (b"referrer-policy", "no-referrer"), (b"x-frame-options", "DENY"),
                                    (b"cache-control", "no-store")):
                    if name not in names:
                        headers.append((name, value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _cookie_args(request: Request) -> dict:
    web = desk_of(request).config.web
    return {"httponly": True, "samesite": "lax", "secure": web.tls or web.url.startswith("https://"), "path": "/"}


async def home(request: Request):
    return RedirectResponse("/queue/mine" if signed_in(request) else "/signin", status_code=303)


async def signin_form(request: Request):
    token, cookie = request.app.state.sessions.pre_token()
    response = render(request, "signin.html", viewer=None, title="Sign in", pre=token, sent=False)
    response.set_cookie(PRE_COOKIE, cookie, max_age=3600, **_cookie_args(request))
    return response


async def signin_request(request: Request):
    form = await request.form()
    if not request.app.state.sessions.pre_ok(request.cookies.get(PRE_COOKIE), form.get("csrf")):
        raise HTTPException(403, "the form's security token is missing or stale; reload the page and try again")
    desk = desk_of(request)
    await db(request_link, desk, str(form.get("address") or ""), _client(request), desk.clock())
    # The same answer for every address: the page does not tell who is an agent.
    return render(request, "signin.html", viewer=None, title="Check your mail", pre="", sent=True)


async def signin_link(request: Request):
    """GET only shows a button: mail scanners that follow links must not use up the link."""
    token, cookie = request.app.state.sessions.pre_token()
    response = render(request, "signin_link.html", viewer=None, title="Sign in", pre=token, token=request.path_params["token"])
    response.set_cookie(PRE_COOKIE, cookie, max_age=3600, **_cookie_args(request))
    return response


async def signin_redeem(request: Request):
    form = await request.form()
    sessions = request.app.state.sessions
    if not sessions.pre_ok(request.cookies.get(PRE_COOKIE), form.get("csrf")):
        raise HTTPException(403, "the form's security token is missing or stale; open the link from your mail again")
    desk = desk_of(request)
    login = await db(redeem_link, desk, request.path_params["token"], _client(request), desk.clock())
    if login is None:
        return render(request, "signin.html", viewer=None, title="Link not valid", pre="", sent=False, status=400,
                      error="This sign-in link is not valid (used, expired or mistyped). Ask for a new one.")
    value, _ = sessions.issue(login)
    response = RedirectResponse("/queue/mine", status_code=303)
    response.set_cookie(COOKIE, value, max_age=int(sessions.max_age), **_cookie_args(request))
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


async def signout(request: Request):
    if signed_in(request) is not None:
        await require_csrf(request)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


async def http_error(request: Request, exc: HTTPException):
    if exc.status_code == 404:
        text = "There is nothing here, or nothing you may see."
    else:
        text = exc.detail or "The request could not be handled."
    try:
        signed_in(request)
    except Exception:  # an error page must render whatever the cookie holds
        request.state.viewer = None
    html = env.get_template("error.html").render(support_name=desk_of(request).config.mail.support_name, viewer=request.state.viewer,
                                                 csrf="", title=f"Error {exc.status_code}", message=text, request=request)
    return HTMLResponse(html, status_code=exc.status_code)


class PolicyPoll:
    """agents.toml edits reach the web process too (checked at most every 2 seconds)."""

    def __init__(self, app, desk):
        self.app, self.desk, self.last = app, desk, 0.0

    async def __call__(self, scope, receive, send):
        now = time.monotonic()
        if scope["type"] == "http" and now - self.last > 2 and self.desk.policy is not None:
            self.last = now
            with contextlib.suppress(Exception):  # the previous files stay in force, as in the processing worker
                await db(self.desk.policy.poll, quiet=True)
        await self.app(scope, receive, send)


def build_app(desk) -> Starlette:
    routes = [
        Route("/", home),
        Route("/signin", signin_form, methods=["GET"]),
        Route("/signin", signin_request, methods=["POST"]),
        Route("/signin/{token}", signin_link, methods=["GET"]),
        Route("/signin/{token}", signin_redeem, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/queue/mine", queues.QUEUES["mine"]),
        Route("/queue/team", queues.QUEUES["team"]),
        Route("/queue/unassigned", queues.QUEUES["unassigned"]),
        Route("/sla", queues.sla),
        Route("/search", queues.search),
        Route("/reports", reports.report),
        Route("/t/{number:int}", ticket.page),
        Route("/t/{number:int}/a/{attachment:int}", ticket.attachment),
        Route("/t/{number:int}/{action}", actions.act, methods=["POST"]),
        Route("/status/{token}", customer.status),
        Route("/status/{token}/kb/{slug}", customer.article),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.desk = desk
    app.state.sessions = Sessions(desk.secret, desk.config.web.session_hours * 3600)
    app.add_middleware(PolicyPoll, desk=desk)
    app.add_middleware(SecurityHeaders)
    return app
