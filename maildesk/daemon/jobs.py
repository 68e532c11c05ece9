"""Scheduled work as plain functions of (desk, now): SLA warnings and escalation, pending
reminders and auto-resolve, closing resolved tickets, removing the bytes of old sent mail.

Every job is idempotent and catches up: it looks at the tickets' stored state, not at
when it last ran, so a daemon that was stopped over a weekend sends each due reminder
once at start (not zero times, not many). Each ticket is handled in its own transaction;
on PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several instances can
run the same job at once without doing anything twice.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from maildesk.desk import Desk
from maildesk.outgoing.digest import send_digests
from maildesk.outgoing.lifecycle import customer_status_mail
from maildesk.outgoing.mailer import queue_mail
from maildesk.outgoing.notify import agents_on_ticket, notify_addresses, notify_agents
from maildesk.sla import clock as slaclock
from maildesk.sla.deadlines import _share, escalation_due, evaluate, raised_priority
from maildesk.storage.models import AutoReply, Suppression, Ticket
from maildesk.storage.writer import Writer
from maildesk.tickets.state import record, set_status
from maildesk.vocab import OPEN_STATES

__all__ = ["JOBS", "Job", "check_sla", "close_resolved", "housekeeping", "purge_sent_mail", "remind_pending"]

log = logging.getLogger("maildesk.jobs")
TARGET_WORDS = {"first_response": "first response", "next_response": "next response", "resolution": "resolution"}


@dataclass(frozen=True)
class Job:
    name: str
    func: Callable[[Desk, datetime], str]
    interval: float  # seconds
    help: str


def _each(desk: Desk, query, handle: Callable[[Writer, Ticket], bool],
          needs: Callable[[Ticket], bool] | None = None) -> int:
    """Run ``handle`` for each matching ticket in its own transaction; returns how many acted.
    ``needs(ticket)``, when given, is asked first in one read-only pass: only tickets it
    says yes to get a write transaction (a desk with 20,000 open tickets and a handful due
    must not take the write lock 20,000 times a minute)."""
    with desk.store.read() as session:
        if needs is None:
            ids = list(session.scalars(query.with_only_columns(Ticket.id).order_by(Ticket.id)))
        else:
            ids = [t.id for t in session.scalars(query.order_by(Ticket.id)) if needs(t)]
    done = 0
    for ticket_id in ids:
        with desk.store.transaction() as session:
            q = select(Ticket).where(Ticket.id == ticket_id)
            if not desk.store.is_sqlite:
                q = q.with_for_update(skip_locked=True, of=Ticket)  # its eager joins (requester, assignee) may not be locked
            ticket = session.scalars(q).first()
            if ticket is not None and handle(Writer(session), ticket):
                done += 1
    return done


def _local(desk: Desk, policy, when: datetime) -> str:
    local = when.astimezone(policy.hours.tz) if policy is not None else when
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname() or ''}".strip()


def _mail_agents(w: Writer, desk: Desk, ticket: Ticket, agents, template: str, now: datetime, extra: dict) -> None:
    """SLA mails to agents (they may opt out of sla_warning / sla_breach like any event)."""
    notify_agents(w, desk, ticket, template, now, recipients=list(agents), template=template, extra=extra)


def _sla_due(desk: Desk, ticket: Ticket, now: datetime) -> list[tuple[str, str, object]]:
    """What check_sla has to do for ``ticket`` now: ("warn"|"breach"|"step", target, detail)."""
    policy = slaclock.policy_of(desk.sla, ticket)
    if policy is None:
        return []
    state = ticket.sla_state or {}
    warned, breached, steps = (state.get(k) if isinstance(state.get(k), dict) else {} for k in ("warned", "breached", "steps"))
    todo: list[tuple[str, str, object]] = []
    for target, st in evaluate(policy, ticket.priority, slaclock.clock_of(ticket), now).items():
        if st.state in ("warning", "breached") and target not in warned and st.due is not None:
            todo.append(("warn", target, st))
        if st.state != "breached":
            continue
        since = breached.get(target) or (st.due or now).isoformat()
        if target not in breached:
            todo.append(("breach", target, since))
        for step in escalation_due(policy, target, datetime.fromisoformat(since), now, steps.get(target, []),
                                   slaclock.clock_of(ticket).pauses):
            todo.append(("step", target, step))
    return todo


def _sla_candidates(desk: Desk, now: datetime):
    """Open tickets that can be near a target at all. Business time never runs faster
    than the clock, so a clock that started less than the smallest warn_at share of any
    goal ago cannot be in warning yet: during a mail storm the new tickets are not looked at."""
    shares = [_share(goal, policy.warn_at) for policy in desk.sla.policies.values()
              for goals in policy.targets.values() for goal in goals.values()]
    query = select(Ticket).where(Ticket.status.in_(OPEN_STATES), Ticket.spam.is_(False),
                                 Ticket.merged_into_id.is_(None))
    if shares:
        started_before = now - min(shares) + timedelta(minutes=1)  # a minute of slack for rounding
        query = query.where(or_(Ticket.created_at <= started_before, Ticket.awaiting_since <= started_before))
    return query


def check_sla(desk: Desk, now: datetime) -> str:
    """Warn at ``warn_at`` of a target, record the breach, run each due escalation step once."""
    if desk.sla is None:
        return "no sla.toml: nothing to check"
    counts = {"warnings": 0, "breaches": 0, "steps": 0}

    def handle(w: Writer, ticket: Ticket) -> bool:
        session = w.session
        todo = _sla_due(desk, ticket, now)
        if not todo:
            return False
        policy = slaclock.policy_of(desk.sla, ticket)
        # A deep copy: mutating the loaded JSON in place would hide the change from the ORM.
        state = copy.deepcopy({k: v for k, v in (ticket.sla_state or {}).items() if isinstance(v, dict)})
        warned, breached, steps = (state.setdefault(k, {}) for k in ("warned", "breached", "steps"))
        for kind, target, detail in todo:
            if kind == "warn":
                warned[target] = now.isoformat()
                recipients = [ticket.assignee] if ticket.assignee else []
                agents = [desk.directory.agent(a.login) for a in recipients if desk.directory.agent(a.login)] \
                    or agents_on_ticket(session, desk, ticket)
                _mail_agents(w, desk, ticket, agents, "sla_warning", now,
                             {"target_words": TARGET_WORDS[target], "due_local": _local(desk, policy, detail.due),
                              "policy": policy.name})
                record(w, ticket, "system", "sla_warning", now, target=target, due=detail.due.isoformat(),
                       to=[a.login for a in agents])
                counts["warnings"] += 1
            elif kind == "breach":
                breached[target] = detail
                record(w, ticket, "system", "sla_breach", now, target=target, policy=policy.name, due=detail)
                counts["breaches"] += 1
            else:
                since = datetime.fromisoformat(breached[target])
                _escalate(w, desk, ticket, policy, detail, target, now, since)
                steps.setdefault(target, []).append(detail.index)
                counts["steps"] += 1
        ticket.sla_state = state
        return True

    _each(desk, _sla_candidates(desk, now), handle, needs=lambda t: bool(_sla_due(desk, t, now)))
    return f"{counts['warnings']} warning(s), {counts['breaches']} breach(es), {counts['steps']} escalation step(s)"


def _escalate(w: Writer, desk: Desk, ticket: Ticket, policy, step, target: str, now: datetime, breached_at) -> None:
    session = w.session
    detail = {"target": target, "step": step.index, "action": step.action}
    if step.notify:
        agents, role = _escalation_recipients(session, desk, ticket, step.notify)
        _mail_agents(w, desk, ticket, agents, "sla_breach", now,
                     {"target_words": TARGET_WORDS[target], "due_local": _local(desk, policy, breached_at),
                      "policy": policy.name, "step": step.index, "role": role})
        if "@" in step.notify:
            notify_addresses(w, desk, ticket, [step.notify], "sla_breach", now, template="sla_breach",
                             extra={"target_words": TARGET_WORDS[target], "role": "escalation contact",
                                    "due_local": _local(desk, policy, breached_at), "policy": policy.name, "step": step.index})
        detail["notified"] = [a.login for a in agents] or [step.notify]
    elif step.raise_priority:
        old, ticket.priority = ticket.priority, raised_priority(ticket.priority)
        slaclock.recompute(desk.sla, ticket)
        detail.update(old=old, new=ticket.priority)
    elif step.reassign_team:
        detail.update(old=ticket.team, new=step.reassign_team,
                      unassigned=ticket.assignee.login if ticket.assignee else None)
        ticket.team, ticket.assignee = step.reassign_team, None
    record(w, ticket, "system", "escalation", now, **detail)


def _escalation_recipients(session: Session, desk: Desk, ticket: Ticket, who: str):
    directory = desk.directory
    if directory is None or "@" in who:
        return [], who
    if who == "assignee" and ticket.assignee and directory.agent(ticket.assignee.login):
        return [directory.agent(ticket.assignee.login)], "assignee"
    team = directory.team(ticket.team) if ticket.team else None
    if team is not None and team.lead and directory.agent(team.lead):
        return [directory.agent(team.lead)], "team lead"
    return [a for a in directory.agents if a.is_admin] or agents_on_ticket(session, desk, ticket), "admin"


def remind_pending(desk: Desk, now: datetime) -> str:
    """Pending on the customer for N days: one reminder; M days after it: resolved."""
    wf = desk.config.workflow
    if wf.reminder_after_days <= 0:
        return "reminders are off"
    counts = {"reminded": 0, "resolved": 0}
    remind_at, resolve_after = timedelta(days=wf.reminder_after_days), timedelta(days=wf.auto_resolve_after_days)

    def handle(w: Writer, ticket: Ticket) -> bool:
        if ticket.status != "pending" or ticket.pending_since is None or (ticket.team or "") in wf.no_reminders_for_teams:
            return False
        if ticket.reminded_at is None and now >= ticket.pending_since + remind_at:
            address = ticket.requester.address
            queue_mail(w, desk.mail, ticket, kind="reminder", template="reminder", to=[(ticket.requester.name, address)],
                       now=now, auto=True, extra={"days": int(wf.auto_resolve_after_days)}, record_kind="reminder")
            ticket.reminded_at = now
            record(w, ticket, "system", "reminder", now, to=address, pending_since=ticket.pending_since.isoformat())
            counts["reminded"] += 1
            return True
        if ticket.reminded_at is not None and wf.auto_resolve_after_days > 0 and now >= ticket.reminded_at + resolve_after:
            set_status(w, ticket, "resolved", "system", now, reason="no answer after the reminder")
            if "resolved" in wf.notify_customer_on:
                customer_status_mail(w, desk, ticket, "resolved", now)
            counts["resolved"] += 1
            return True
        return False

    _each(desk, select(Ticket).where(Ticket.status == "pending"), handle)
    desk.wake("outbox")
    return f"{counts['reminded']} reminder(s), {counts['resolved']} auto-resolved"


def close_resolved(desk: Desk, now: datetime) -> str:
    """Resolved tickets close after the grace period."""
    days = desk.config.workflow.close_resolved_after_days
    if days <= 0:
        return "auto-close is off"
    limit = now - timedelta(days=days)

    def handle(w: Writer, ticket: Ticket) -> bool:
        if ticket.status != "resolved" or ticket.resolved_at is None or ticket.resolved_at > limit:
            return False  # re-checked under the row lock: another instance may have closed it meanwhile
        set_status(w, ticket, "closed", "system", now, reason=f"resolved for {days:g} days")
        if "closed" in desk.config.workflow.notify_customer_on:
            customer_status_mail(w, desk, ticket, "closed", now)
        return True

    n = _each(desk, select(Ticket).where(Ticket.status == "resolved", Ticket.resolved_at <= limit), handle)
    desk.wake("outbox")
    return f"{n} ticket(s) closed"


def housekeeping(desk: Desk, now: datetime) -> str:
    """Forget rate-limit entries older than the window and suppressions that ran out."""
    window = timedelta(seconds=desk.config.mail.autoreply_window)
    with desk.store.transaction() as session:
        old = session.execute(delete(AutoReply).where(AutoReply.at < now - window)).rowcount or 0
        expired = session.execute(delete(Suppression).where(Suppression.until < now)).rowcount or 0
    return f"{old} old rate-limit entr{'y' if old == 1 else 'ies'}, {expired} expired suppression(s) removed"


def purge_sent_mail(desk: Desk, now: datetime) -> str:
    """Sent mail older than ``[outbound] keep_sent_days`` loses its bytes; its outbox row stays."""
    from maildesk.outgoing.outbox import purge_sent

    n, size = purge_sent(desk.store, now - timedelta(days=desk.config.outbound.keep_sent_days))
    return f"{n} sent mail bod{'y' if n == 1 else 'ies'} removed ({size:,} bytes)"


JOBS = {job.name: job for job in (
    Job("check_sla", check_sla, 60, "SLA warnings, breaches and escalation steps"),
    Job("remind_pending", remind_pending, 900, "reminders for tickets pending on the customer, then auto-resolve"),
    Job("close_resolved", close_resolved, 900, "close resolved tickets after the grace period"),
    Job("housekeeping", housekeeping, 3600, "forget old auto-reply counts and expired bounce suppressions"),
    Job("purge_sent", purge_sent_mail, 3600, "remove the bytes of mail sent more than [outbound] keep_sent_days ago"),
    Job("notify_digest", send_digests, 60, "one digest per agent of the notifications held by [workflow] notify_limit"),
    Job("digest", lambda desk, now: _digest(desk, now), 3600, "weekly digest of last week's report to each team lead (once a week)"),
)}


def _digest(desk: Desk, now: datetime) -> str:
    from maildesk.reporting.weekly import digest_job

    return digest_job(desk, now)
