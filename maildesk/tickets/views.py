"""Read-only views of tickets, inbox and outbox rows as plain dicts (for JSON and tables)."""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes
from email import policy as email_policy

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maildesk.parse.subjects import find_refs, format_ref
from maildesk.storage.models import Event, InboxMail, Outbox, Participant, Rating, Ticket, TicketMessage

__all__ = ["find_ticket_by_ref", "format_sent_mail", "inbox_view", "merged_into", "outbox_view", "sent_mail_view", "table",
           "ticket_detail", "ticket_summary"]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def find_ticket_by_ref(session: Session, ref: str, prefix: str) -> Ticket | None:
    text = ref.strip()
    number = int(text) if text.isdigit() else next(iter(find_refs(text, prefix)), None)
    return session.get(Ticket, number) if number is not None else None


def ticket_summary(ticket: Ticket, prefix: str, message_count: int) -> dict:
    return {
        "number": ticket.id,
        "ref": format_ref(prefix, ticket.id),
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "requester": ticket.requester.address if ticket.requester else None,
        "requester_name": ticket.requester.name if ticket.requester else None,
        "assignee": ticket.assignee.login if ticket.assignee else None,
        "team": ticket.team,
        "queue": ticket.queue,
        "tags": list(ticket.tags or []),
        "spam": ticket.spam,
        "sla_policy": ticket.sla_policy,
        "support_address": ticket.support_address,
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "first_response_at": _iso(ticket.first_response_at),
        "resolved_at": _iso(ticket.resolved_at),
        "closed_at": _iso(ticket.closed_at),
        "sla": {"first_response_due": _iso(ticket.first_response_due), "next_response_due": _iso(ticket.next_response_due),
                "resolution_due": _iso(ticket.resolution_due), "breached": sorted((ticket.sla_state or {}).get("breached", {})),
                "paused": ticket.status == "pending"},
        "parent": format_ref(prefix, ticket.parent_id) if ticket.parent_id else None,
        "merged_into": format_ref(prefix, ticket.merged_into_id) if ticket.merged_into_id else None,
        "message_count": message_count,
    }


def message_counts(session: Session, ticket_ids: list[int]) -> dict[int, int]:
    if not ticket_ids:
        return {}
    rows = session.execute(select(TicketMessage.ticket_id, func.count()).where(TicketMessage.ticket_id.in_(ticket_ids))
                           .group_by(TicketMessage.ticket_id))
    return dict(rows.all())


def merged_into(session: Session, ticket_id: int) -> list[int]:
    """The tickets merged into ``ticket_id``, directly or through others, oldest first."""
    found, frontier = [], [ticket_id]
    while frontier and len(found) < 10_000:
        frontier = [n for n in session.scalars(select(Ticket.id).where(Ticket.merged_into_id.in_(frontier)))
                    if n not in found and n != ticket_id]
        found += frontier
    return sorted(found)


def ticket_detail(session: Session, ticket: Ticket, prefix: str) -> dict:
    """The ticket with its whole conversation: its messages and those of the tickets merged
    into it (each naming its origin in ``ticket``/``merged_from``), in the order they came."""
    merged = merged_into(session, ticket.id)
    messages = list(session.scalars(select(TicketMessage).where(TicketMessage.ticket_id.in_([ticket.id, *merged]))
                                    .order_by(TicketMessage.created_at, TicketMessage.id)))
    events = session.scalars(select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id))
    out = ticket_summary(ticket, prefix, len(messages))
    out["merged_in"] = [format_ref(prefix, n) for n in merged]
    out["messages"] = [{
        "id": m.id,
        "ticket": format_ref(prefix, m.ticket_id),
        "merged_from": format_ref(prefix, m.ticket_id) if m.ticket_id != ticket.id else None,
        "direction": m.direction,
        "kind": m.kind,
        "from": m.from_addr,
        "from_name": m.from_name,
        "to": list(m.to or []),
        "cc": list(m.cc or []),
        "subject": m.subject,
        "message_id": m.message_id,
        "thread_via": m.thread_via,
        "verified": m.kind != "unverified",
        "created_at": _iso(m.created_at),
        "text": m.text,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size, "sha256": a.sha256}
                        for a in m.attachments],
    } for m in messages]
    rating = session.scalars(select(Rating).where(Rating.ticket_id == ticket.id)).first()
    out["rating"] = {"score": rating.score, "comment": rating.comment, "at": _iso(rating.at)} if rating else None
    out["participants"] = [{"address": a, "role": r} for a, r in session.execute(
        select(Participant.address, Participant.role).where(Participant.ticket_id == ticket.id).order_by(Participant.id))]
    out["events"] = [{"at": _iso(e.at), "actor": e.actor, "kind": e.kind, "detail": e.detail} for e in events]
    unassigned = [e for e in out["events"] if e["kind"] == "unassigned"]
    out["unassigned_reason"] = unassigned[-1]["detail"].get("reason") if unassigned and ticket.assignee is None else None
    return out


def inbox_view(row: InboxMail, prefix: str) -> dict:
    return {
        "id": row.id,
        "status": row.status,
        "outcome": row.outcome,
        "error": row.error,
        "message_id": row.message_id,
        "received_at": _iso(row.received_at),
        "processed_at": _iso(row.processed_at),
        "source": row.source,
        "mail_from": row.mail_from,
        "size": row.size,
        "attempts": row.attempts,
        "ticket": format_ref(prefix, row.ticket_id) if row.ticket_id else None,
    }


def outbox_view(row: Outbox, prefix: str) -> dict:
    return {
        "id": row.id,
        "status": row.status,
        "kind": row.kind,
        "ticket": format_ref(prefix, row.ticket_id) if row.ticket_id else None,
        "to": list(row.rcpt_to),
        "message_id": row.message_id,
        "attempts": row.attempts,
        "created_at": _iso(row.created_at),
        "next_attempt_at": _iso(row.next_attempt_at) if row.status == "queued" else None,
        "sent_at": _iso(row.sent_at),
        "last_error": row.last_error,
    }


_PLUMBING = ("mime-version", "content-type", "content-transfer-encoding", "content-disposition")


def sent_mail_view(row: Outbox, prefix: str) -> dict:
    """An outgoing mail as a person reads it: its headers and text decoded, attachments named.
    A mail whose bytes were removed after ``[outbound] keep_sent_days`` shows its envelope only."""
    if row.raw is None:
        return {**outbox_view(row, prefix), "mail_from": row.mail_from, "headers": [["Message-ID", row.message_id]],
                "text": "(its bytes were removed after delivery: [outbound] keep_sent_days)", "attachments": []}
    msg = message_from_bytes(row.raw, policy=email_policy.default)
    headers = [[name, " ".join(str(value).split())] for name, value in msg.items() if name.lower() not in _PLUMBING]
    body = msg.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        text = body.get_content()
        if body.get_content_type() == "text/html":
            from inscriptis import get_text

            text = get_text(text)
    attachments = [{"filename": part.get_filename() or "", "content_type": part.get_content_type(),
                    "size": len(part.get_payload(decode=True) or b"")} for part in msg.iter_attachments()]
    return {**outbox_view(row, prefix), "mail_from": row.mail_from, "headers": headers, "text": text, "attachments": attachments}


def format_sent_mail(view: dict) -> str:
    lines = [f"outbox {view['id']}  {view['status']}  {view['kind']}  {view['ticket'] or '-'}  "
             f"envelope {view['mail_from'] or '<>'} -> {', '.join(view['to'])}", ""]
    lines += [f"{name}: {value}" for name, value in view["headers"]]
    lines += ["", view["text"].rstrip()]
    lines += [f"(attachment {a['filename'] or '-'}, {a['content_type']}, {a['size']} bytes)" for a in view["attachments"]]
    return "\n".join(lines)


def table(rows: list[dict], columns: list[str], widths: dict[str, int] | None = None) -> str:
    """A plain fixed-width table for people; long cells are cut with an ellipsis."""
    widths = widths or {}

    def cell(value, col):
        text = "" if value is None else ", ".join(value) if isinstance(value, list) else str(value)
        text = " ".join(text.split())
        limit = widths.get(col, 40)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    cells = [[cell(r.get(c), c) for c in columns] for r in rows]
    sizes = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(sizes[i]) for i, c in enumerate(columns)).rstrip()]
    lines += ["  ".join(v.ljust(sizes[i]) for i, v in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)
