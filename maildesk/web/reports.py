"""The report of :mod:`maildesk.reporting` (figures and charts) on a page, for the periods
and teams the viewer may read: admins the whole desk and every team, a team lead their
teams; anyone else, or another team, gets 404."""

from __future__ import annotations

import re
from datetime import timedelta

from starlette.requests import Request

from maildesk.reporting import build_report, load_dataset
from maildesk.reporting.html import render_html
from maildesk.web.common import db, desk_of, not_found, render, viewer_or_redirect

__all__ = ["PERIODS", "report"]

PERIODS = {"7": "last 7 days", "30": "last 30 days", "90": "last 90 days", "365": "last 365 days"}
# The report document's own <style> and data: charts; scripts stay forbidden.
REPORT_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
              "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def _report(desk, team: str | None, days: int) -> str:
    until = desk.clock()
    since = until - timedelta(days=days)
    with desk.store.read() as session:
        rows = load_dataset(session, until, team, since)
        data = build_report(rows, desk.sla, since, until, team=team)
    html = render_html(data, title=f"Report: {team or 'all teams'}, {PERIODS[str(days)]}")
    body = re.search(r"<body[^>]*>(.*)</body>", html, re.S)
    css = "".join(re.findall(r"<style[^>]*>(.*?)</style>", html, re.S))
    return f"<style>{_scoped(css)}</style>" + (body.group(1) if body else html)


def _scoped(css: str) -> str:
    """The report's rules apply inside ``.report`` only (its ``body`` rule to ``.report``)."""
    def scope(m):
        return ", ".join(".report" if s.strip() == "body" else f".report {s.strip()}" for s in m.group(1).split(",")) + " {"
    return re.sub(r"([^{}]+)\{", scope, css)


async def report(request: Request):
    viewer = viewer_or_redirect(request)
    if not hasattr(viewer, "login"):
        return viewer
    desk = desk_of(request)
    allowed = viewer.report_teams(desk.directory)
    if not allowed:
        raise not_found()
    raw_team = request.query_params.get("team", "")
    team = raw_team or (None if None in allowed else allowed[0])
    if team not in allowed:
        raise not_found()
    days = request.query_params.get("days", "30")
    if days not in PERIODS:
        raise not_found()
    content = await db(_report, desk, team, int(days))
    response = render(request, "reports.html", title="Reports", content=content, allowed=allowed, team=team, days=days, periods=PERIODS)
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response
