"""The digest of held notifications: one mail per recipient per ``[workflow] notify_window``.

Notifications held by the fan-out limit (:mod:`maildesk.outgoing.fanout`) wait as
:class:`~maildesk.storage.models.HeldNotification` rows. The ``notify_digest`` job (every minute)
mails each recipient with held rows one digest listing them, unless that recipient already
got a digest within ``notify_window``: so the first digest comes within a minute of the
first held notification, and a flood that goes on costs each agent one mail per window.
A recipient's rows are claimed and mailed in one transaction (an instance that finds them
taken by another skips them), so a digest is queued once. The job also forgets counts and
digested rows older than the window: the limit never looks further back.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update

from maildesk.desk import Desk
from maildesk.outgoing.mailbuild import Outgoing, compose, message_id_domain, new_message_id
from maildesk.outgoing.outbox import enqueue
from maildesk.outgoing.tokens import bounce_address, new_key
from maildesk.parse.subjects import format_ref
from maildesk.process.autoreply import LOOP_HEADER
from maildesk.storage.models import HeldNotification, Notified
from maildesk.storage.writer import Writer

__all__ = ["LISTED", "send_digests"]

LISTED = 50  # held notifications listed one by one in a digest; the rest are counted by sender
_Held = HeldNotification
_WAITING = select(_Held.recipient).where(_Held.digest_at.is_(None)).group_by(_Held.recipient)
_RECENT = select(_Held.recipient).where(_Held.digest_at > bindparam("since")).group_by(_Held.recipient)
_ROWS = select(_Held).where(_Held.recipient == bindparam("recipient"), _Held.digest_at.is_(None)).order_by(_Held.id)


class _Taken(Exception):
    """Another instance mailed this recipient's digest first."""


def send_digests(desk: Desk, now: datetime) -> str:
    """Queue the digests that are due; returns what it did (for ``maildesk jobs``)."""
    since = now - timedelta(seconds=desk.config.workflow.notify_window)
    with desk.store.read() as session:
        waiting = set(session.scalars(_WAITING))
        due = sorted(waiting - set(session.scalars(_RECENT, {"since": since})))
    sent = listed = 0
    for recipient in due:
        try:
            n = _digest(desk, recipient, now)
        except _Taken:
            continue
        sent, listed = sent + (n > 0), listed + n
    with desk.store.transaction() as session:
        session.execute(delete(Notified).where(Notified.at <= since))
        session.execute(delete(_Held).where(_Held.digest_at <= since))
    if sent:
        desk.wake("outbox")
    return f"{sent} digest(s) listing {listed} held notification(s); {len(waiting) - sent} recipient(s) wait for their window"


def _digest(desk: Desk, recipient: str, now: datetime) -> int:
    with desk.store.transaction() as session:
        rows = list(session.scalars(_ROWS, {"recipient": recipient}))
        taken = session.execute(update(_Held).where(_Held.id.in_([r.id for r in rows]), _Held.digest_at.is_(None))
                                .values(digest_at=now)).rowcount
        if taken != len(rows):
            raise _Taken
        to = _address_of(desk, recipient)
        if to is None or not rows:  # an agent removed from agents.toml: nothing to send, nothing kept
            return 0
        _queue(Writer(session), desk, to, rows, now)
        return len(rows)


def _address_of(desk: Desk, recipient: str) -> tuple[str, str] | None:
    if "@" in recipient:
        return "", recipient
    agent = desk.directory.agent(recipient) if desk.directory is not None else None
    return (agent.name, agent.address) if agent is not None else None


def _queue(w: Writer, desk: Desk, to: tuple[str, str], rows: list, now: datetime) -> None:
    cfg, prefix = desk.config, desk.config.mail.ticket_prefix
    items = [{"when": f"{r.at:%Y-%m-%d %H:%M}", "ref": format_ref(prefix, r.ticket_id), "sender": r.sender or "(no sender)",
              "subject": r.subject or "(no subject)", "event": r.event, "why": r.why} for r in rows]
    senders = Counter(i["sender"] for i in items).most_common()
    tickets = len({r.ticket_id for r in rows})
    rendered = desk.renderer.render("notify_digest", items=items[:LISTED], more=max(0, len(items) - LISTED), total=len(items),
                                    senders=senders, tickets=tickets, agent_name=to[0], support_name=cfg.mail.support_name,
                                    limit=cfg.workflow.notify_limit, window_minutes=round(cfg.workflow.notify_window / 60))
    support = cfg.mail.primary
    key = new_key()
    raw, message_id = compose(Outgoing(
        from_addr=support, from_name=cfg.mail.support_name, to=[to], subject=rendered.subject, text=rendered.text,
        html=rendered.html, auto_headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
        extra_headers={LOOP_HEADER: desk.loop_id, "X-Maildesk-Event": "digest"},
        message_id=new_message_id(message_id_domain(support), key)), now)
    enqueue(w, ticket_id=None, kind="digest", raw=raw, message_id=message_id,
            mail_from=bounce_address(desk.secret, support, key), rcpt_to=[to[1]], now=now)

