"""Who sent this? (design section 5: a From header proves nothing)

A mail counts as an agent's only when the From address is a configured agent AND
either it came to that agent's own signed reply token, or an ``Authentication-Results``
header added by a configured trusted server (its authserv-id) reports DKIM or SPF pass
for the sender's domain. Otherwise the mail is a customer's; when it merely claims an
agent's address, :attr:`Identity.claimed` says so and the caller records a security event.
Authentication-Results headers are parsed with ``authres`` (RFC 8601).
"""

from __future__ import annotations

from dataclasses import dataclass

import authres

from maildesk.message import InboundMessage
from maildesk.tokens import ReplyToken

__all__ = ["Identity", "authenticated_domains", "identify"]


@dataclass(frozen=True)
class Identity:
    agent: object | None  # the directory's Agent when authenticated
    claimed: object | None  # the Agent whose address is in From, authenticated or not
    how: str  # "token", "dkim", "spf", "" (not authenticated)

    @property
    def is_agent(self) -> bool:
        return self.agent is not None


def authenticated_domains(msg: InboundMessage, trusted: tuple[str, ...]) -> dict[str, str]:
    """Domains with a DKIM or SPF pass in Authentication-Results from a trusted authserv-id."""
    wanted = {t.lower() for t in trusted}
    passed: dict[str, str] = {}
    if not wanted:
        return passed
    for value in msg.headers.get("authentication-results", ()):
        try:
            header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
        except Exception:  # a malformed header proves nothing
            continue
        if (header.authserv_id or "").lower() not in wanted:
            continue
        for result in header.results:
            if result.method not in ("dkim", "spf") or result.result != "pass":
                continue
            for prop in result.properties:
                key = f"{prop.type}.{prop.name}".lower()
                value_ = (prop.value or "").lower()
                if key in ("header.d", "header.i", "smtp.mailfrom", "smtp.helo", "header.from"):
                    domain = value_.rsplit("@", 1)[-1]
                    if domain:
                        passed.setdefault(domain, result.method)
    return passed


def identify(msg: InboundMessage, token: ReplyToken | None, directory, trusted: tuple[str, ...]) -> Identity:
    sender = (msg.from_addr or "").lower()
    claimed = directory.agent_by_address(sender) if directory is not None and sender else None
    if claimed is None:
        return Identity(None, None, "")
    if token is not None and token.agent and token.agent == claimed.login:
        return Identity(claimed, claimed, "token")
    domain = sender.rsplit("@", 1)[-1]
    method = authenticated_domains(msg, trusted).get(domain)
    if method:
        return Identity(claimed, claimed, method)
    return Identity(None, claimed, "")
