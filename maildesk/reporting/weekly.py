"""The weekly digest: last week's report for each team, mailed to the team's lead (and
to ``[workflow] digest_to`` for all teams), compared with the week before, with the open
tickets breaching or about to breach their SLA. HTML with the charts as inline PNG parts
(``multipart/related``, ``cid:`` sources: Gmail, Outlook and Apple Mail show them) and a
plain-text alternative with the same figures. Queued through the outbox like all mail.

The job runs hourly and sends each week's digest once (an event ``digest_sent`` per
week): a restart or a missed hour never sends it twice or skips it. A team with no
ticket, backlog or rating in either week gets none (a new desk sends nothing). Instances
sharing a PostgreSQL database take a transaction-level advisory lock first, so two that
start the job in the same second send it once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy import text as sql_text

from maildesk.desk import Desk
from maildesk.outgoing.mailbuild import Body, Outgoing, _multipart, _text_part, compose
from maildesk.parse.subjects import format_ref
from maildesk.reporting import build_report, load_dataset
from maildesk.reporting.charts import render_charts
from maildesk.reporting.html import render_html
from maildesk.reporting.render import to_text
from maildesk.sla.clock import clock_of
from maildesk.sla.deadlines import evaluate
from maildesk.storage.models import Event, Ticket
from maildesk.vocab import OPEN_STATES

__all__ = ["breaching", "build_digest", "digest_job", "week_of"]

DIGEST_LOCK = 0x6D64_7765_656B_6C79  # pg_advisory_xact_lock key of the weekly digest ("mdweekly")


def week_of(now: datetime) -> tuple[datetime, datetime, datetime]:
    """(start of the week before last, start of last week, start of this week), Mondays 00:00 UTC."""
    this = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return this - timedelta(days=14), this - timedelta(days=7), this


def breaching(session, sla, now: datetime, team: str | None, prefix: str, limit: int = 50) -> list[dict]:
    """Open tickets with a target breached or past its warning point, most urgent first."""
    if sla is None:
        return []
    q = select(Ticket).where(Ticket.status.in_(OPEN_STATES), Ticket.merged_into_id.is_(None), Ticket.spam.is_(False))
    if team:
        q = q.where(Ticket.team == team)
    out = []
    for t in session.scalars(q):
        policy = sla.policy_for(t.priority, t.team, t.sla_policy)
        for target, st in evaluate(policy, t.priority, clock_of(t), now).items():
            if st.state in ("breached", "warning"):
                out.append({"ref": format_ref(prefix, t.id), "subject": t.subject, "target": target, "state": st.state,
                            "due": st.due.isoformat()[:16].replace("T", " ") if st.due else "-"})
    out.sort(key=lambda b: (b["state"] != "breached", b["due"]))
    return out[:limit]


def _compare(r: dict, prev: dict) -> list[str]:
    def d(a, b, unit=""):
        if a is None or b is None:
            return ""
        return f" ({'+' if a >= b else ''}{round(a - b, 2):g}{unit} vs previous week)"

    fr, pfr = r["times"]["first_response"]["business"], prev["times"]["first_response"]["business"]
    rs, prs = r["times"]["resolution"]["business"], prev["times"]["resolution"]["business"]
    return [f"Tickets created: {r['volume']['created']}{d(r['volume']['created'], prev['volume']['created'])}",
            f"Median first response (business): {fr['median_hours']} h{d(fr['median_hours'], pfr['median_hours'], ' h')}",
            f"Median resolution (business): {rs['median_hours']} h{d(rs['median_hours'], prs['median_hours'], ' h')}",
            f"Open backlog: {r['backlog']['open']}{d(r['backlog']['open'], prev['backlog']['open'])}",
            f"Average rating: {r['satisfaction']['average']}{d(r['satisfaction']['average'], prev['satisfaction']['average'])}"]


def build_digest(session, desk: Desk, now: datetime, team: str | None) -> tuple[str, str, dict[str, bytes], str] | None:
    """(subject, text, charts by name, html with cid: sources) for one team (None: all);
    None when there is nothing to report (no ticket, backlog or rating in either week)."""
    before, since, until = week_of(now)
    sla, prefix = desk.sla, desk.config.mail.ticket_prefix
    data = load_dataset(session, until, team, before)
    r = build_report(data, sla, since, until, team=team)
    prev = build_report(data, sla, before, since, team=team)
    late = breaching(session, sla, now, team, prefix)
    if not late and not any(x["volume"]["created"] or x["backlog"]["open"] or x["satisfaction"]["responses"] for x in (r, prev)):
        return None
    lines = [f"Weekly support digest{' for team ' + team if team else ''}: {since.date()} to {(until - timedelta(days=1)).date()}", "",
             *_compare(r, prev), "", to_text(r), ""]
    lines.append(f"Tickets breaching or about to breach ({len(late)}):" if late else "No open ticket is breaching or about to breach its SLA.")
    lines += [f"  {b['ref']:<10} {b['state']:<9} {b['target']:<15} due {b['due']}  {b['subject'][:60]}" for b in late]
    charts = render_charts(r)
    html = render_html(r, {name: f"cid:{name}@digest" for name in charts},
                       title=f"Weekly support digest{' — ' + team if team else ''}", extra={"previous": prev, "breaching": late})
    subject = f"[{desk.config.mail.support_name}] weekly digest{' ' + team if team else ''}: {r['volume']['created']} new, " \
              f"{r['backlog']['open']} open, {len(late)} at risk"
    return subject, "\n".join(lines) + "\n", charts, html


def _body(text: str, html: str, charts: dict[str, bytes]) -> Body:
    import base64

    images = [Body(f"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <{name}@digest>\r\n"
                   f"Content-Disposition: inline; filename=\"{name}.png\"\r\n", base64.encodebytes(png).replace(b"\n", b"\r\n"))
              for name, png in charts.items()]
    related = _multipart("related; type=\"text/html\"", [_text_part(html, "html"), *images])
    return _multipart("alternative", [_text_part(text, "plain"), related])


def digest_job(desk: Desk, now: datetime) -> str:
    cfg = desk.config.workflow
    if not cfg.digest:
        return "off ([workflow] digest = false)"
    _, since, _ = week_of(now)
    week = since.date().isoformat()
    directory = desk.directory
    targets: list[tuple[str | None, list[str]]] = []
    for team in (directory.teams if directory else ()):
        lead = directory.agent(team.lead) if team.lead else None
        if lead:
            targets.append((team.name, [lead.address]))
    if cfg.digest_to:
        targets.append((None, list(cfg.digest_to)))
    if not targets:
        return "nobody to send it to (no team with a lead in agents.toml, no [workflow] digest_to)"
    from maildesk.outgoing.outbox import enqueue
    from maildesk.storage.writer import Writer

    with desk.store.transaction() as session:
        if not desk.store.is_sqlite:  # several instances start the job at once: one sends, the others find digest_sent
            session.execute(sql_text("SELECT pg_advisory_xact_lock(:k)"), {"k": DIGEST_LOCK})
        if session.scalar(select(Event.id).where(Event.kind == "digest_sent", Event.ticket_id.is_(None), Event.at >= since).limit(1)):
            return f"the digest for the week of {week} was sent already"
        sent = 0
        for team, rcpts in targets:
            digest = build_digest(session, desk, now, team)
            if digest is None:
                continue
            subject, text, charts, html = digest
            sent += 1
            raw, mid = compose(Outgoing(from_addr=desk.config.mail.primary, from_name=desk.config.mail.support_name,
                                        to=[("", a) for a in rcpts], subject=subject, text=text,
                                        auto_headers={"Auto-Submitted": "auto-generated"}), now, body=_body(text, html, charts))
            enqueue(Writer(session), ticket_id=None, kind="digest", raw=raw, message_id=mid, mail_from=desk.config.mail.primary, rcpt_to=rcpts, now=now)
        if not sent:
            return f"nothing to report for the week of {week}: no ticket, backlog or rating"
        session.add(Event(ticket_id=None, at=now, actor="system", kind="digest_sent", detail={"week": week, "digests": sent}))
    return f"{sent} digest(s) queued for the week of {week}"
