"""Sign-in without passwords, sessions and CSRF tokens.

An agent types their address; when agents.toml knows it, a one-time link (256 random
bits from :mod:`secrets`; only its SHA-256 is stored) is queued in the outbox like any
mail maildesk sends. Following it within ``[web] link_minutes`` signs them in once.
Sign-in requests are limited per address and per client (``signin_per_address``,
``signin_per_client`` within ``signin_window`` seconds). Every request for a link, every
sign-in and every refused link is an event (``maildesk events list --kind security`` for
the refusals, ``--kind web_signin`` for the sign-ins).

The session is a cookie signed with a key derived from ``[mail] secret``
(itsdangerous): the agent's login and a random CSRF token, HttpOnly, SameSite=Lax,
Secure when the pages are served over TLS (``tls_cert`` or an https ``base_url``), and
good for ``session_hours``. Every POST carries the token in a form field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, func, select

from maildesk.outgoing.mailbuild import Outgoing, compose
from maildesk.outgoing.outbox import enqueue
from maildesk.storage.models import SigninRequest, WebToken
from maildesk.storage.writer import Writer
from maildesk.tickets.state import record

__all__ = ["COOKIE", "PRE_COOKIE", "Sessions", "redeem_link", "request_link"]

COOKIE = "maildesk_session"
PRE_COOKIE = "maildesk_csrf"  # the sign-in form's CSRF token, before there is a session


def _key(secret: str) -> str:
    return hmac.new(secret.encode(), b"maildesk-web-session", hashlib.sha256).hexdigest()


@dataclass
class Sessions:
    secret: str
    max_age: float

    def __post_init__(self):
        self._s = URLSafeTimedSerializer(_key(self.secret), salt="session")
        self._pre = URLSafeTimedSerializer(_key(self.secret), salt="signin-form")

    def issue(self, login: str) -> tuple[str, str]:
        """A session cookie value for ``login`` and its CSRF token."""
        csrf = secrets.token_urlsafe(24)
        return self._s.dumps({"login": login, "csrf": csrf}), csrf

    def read(self, value: str | None) -> dict | None:
        if not value:
            return None
        try:
            data = self._s.loads(value, max_age=self.max_age)
        except BadSignature:
            return None
        return data if isinstance(data, dict) and "login" in data and "csrf" in data else None

    def pre_token(self) -> tuple[str, str]:
        """The sign-in form's token and its signed cookie value."""
        token = secrets.token_urlsafe(24)
        return token, self._pre.dumps(token)

    def pre_ok(self, cookie: str | None, form_token: str | None) -> bool:
        if not cookie or not form_token:
            return False
        try:
            token = self._pre.loads(cookie, max_age=3600)
        except BadSignature:
            return False
        return isinstance(token, str) and hmac.compare_digest(token, form_token)


def csrf_ok(session: dict | None, form_token: str | None) -> bool:
    return bool(session and form_token) and hmac.compare_digest(str(session["csrf"]), str(form_token))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_link(desk, address: str, client: str, now: datetime) -> str:
    """Handle a sign-in request; returns what happened in words (never shown to the
    requester, who always sees the same answer whether the address is an agent's or not)."""
    web = desk.config.web
    address = address.strip().lower()[:320]
    since = now - timedelta(seconds=web.signin_window)
    with desk.store.transaction() as session:
        by_address = session.scalar(select(func.count()).select_from(SigninRequest)
                                    .where(SigninRequest.address == address, SigninRequest.at >= since))
        by_client = session.scalar(select(func.count()).select_from(SigninRequest)
                                   .where(SigninRequest.client == client[:100], SigninRequest.at >= since))
        # rows that no longer count are removed as they are passed (the indexes lead with address and client)
        session.execute(delete(SigninRequest).where(SigninRequest.address == address, SigninRequest.at < since))
        session.execute(delete(SigninRequest).where(SigninRequest.client == client[:100], SigninRequest.at < since))
        session.add(SigninRequest(at=now, address=address, client=client[:100]))
        if by_address >= web.signin_per_address or by_client >= web.signin_per_client:
            which = "address" if by_address >= web.signin_per_address else "client"
            record(Writer(session), None, "web", "security", now, reason=f"web sign-in rate limit reached (per {which})",
                   address=address, client=client)
            return "rate limited"
        agent = desk.directory.agent_by_address(address) if desk.directory else None
        if agent is None:
            record(Writer(session), None, "web", "security", now, reason="web sign-in requested for an address that is no agent's",
                   address=address, client=client)
            return "unknown address"
        session.execute(delete(WebToken).where(WebToken.login == agent.login, WebToken.expires_at < now - timedelta(days=1)))
        token = secrets.token_urlsafe(32)  # 256 bits
        session.add(WebToken(token_hash=_hash(token), login=agent.login, created_at=now,
                             expires_at=now + timedelta(minutes=web.link_minutes)))
        link = f"{web.url}/signin/{token}"
        text = (f"Hello {agent.name},\n\nfollow this link to sign in to {desk.config.mail.support_name}'s desk:\n\n{link}\n\n"
                f"It works once, within {web.link_minutes:g} minutes. If you did not ask for it, ignore this mail.\n")
        primary = desk.config.mail.primary
        raw, mid = compose(Outgoing(from_addr=primary, from_name=desk.config.mail.support_name, to=[(agent.name, agent.address)],
                                    subject="Your sign-in link", text=text, auto_headers={"Auto-Submitted": "auto-generated"}), now)
        enqueue(Writer(session), ticket_id=None, kind="signin", raw=raw, message_id=mid, mail_from=primary, rcpt_to=[agent.address], now=now)
        record(Writer(session), None, "web", "web_signin_link", now, login=agent.login, client=client)
    desk.wake("outbox")
    return "link queued"


def redeem_link(desk, token: str, client: str, now: datetime) -> str | None:
    """The login a link signs in, once; None (and a security event) for anything else."""
    with desk.store.transaction() as session:
        row = session.get(WebToken, _hash(token), with_for_update=True) if len(token) < 200 else None
        problem = ("unknown sign-in link" if row is None else "sign-in link used twice" if row.used_at is not None
                   else "sign-in link expired" if row.expires_at <= now else None)
        agent = desk.directory.agent(row.login) if row is not None and desk.directory else None
        if problem is None and agent is None:
            problem = "sign-in link of an agent no longer in agents.toml"
        if problem is not None:
            record(Writer(session), None, "web", "security", now, reason=f"web sign-in refused: {problem}", client=client,
                   login=row.login if row is not None else None)
            return None
        row.used_at = now
        record(Writer(session), None, f"agent:{agent.login}", "web_signin", now, client=client)
        return agent.login
