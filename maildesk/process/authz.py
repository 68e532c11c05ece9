"""Who sent this? (design section 5: a From header proves nothing)

A mail counts as an agent's only when the From address is a configured agent AND either
it came to that agent's own signed reply token, or the topmost ``Authentication-Results``
header, added by a configured trusted server (its authserv-id), reports

- ``dkim=pass`` with ``header.d`` equal to the agent address's domain (DMARC-style
  alignment; ``header.i``, when present, inside that domain), for a domain listed in
  ``[auth] dkim_domains`` (its server stops users from sending with each other's From:), or
- ``spf=pass`` with ``smtp.mailfrom`` equal to the agent's own address.

HELO results never count. Only the topmost header counts: the receiving MTA adds its own on
top, and anything below it came from outside. Otherwise the mail is a customer's; when it
merely claims an agent's address, :attr:`Identity.claimed` says so and the caller records a
security event. Authentication-Results headers are parsed with ``authres`` (RFC 8601).
"""

from __future__ import annotations

from dataclasses import dataclass

import authres

from maildesk.outgoing.tokens import ReplyToken
from maildesk.parse.message import InboundMessage

__all__ = ["Identity", "SenderCheck", "check_sender", "identify", "topmost_results"]


@dataclass(frozen=True)
class Identity:
    agent: object | None  # the directory's Agent when authenticated
    claimed: object | None  # the Agent whose address is in From, authenticated or not
    how: str  # "token", "dkim", "spf", "" (not authenticated)

    @property
    def is_agent(self) -> bool:
        return self.agent is not None


@dataclass(frozen=True)
class _Result:
    method: str
    result: str
    props: dict[str, str]  # "header.d" -> "example.test", lower-cased


def topmost_results(msg: InboundMessage, trusted: tuple[str, ...]) -> list[_Result] | None:
    """The results of the topmost Authentication-Results header when a trusted server added
    it; None when there is none, it does not parse, or its authserv-id is not trusted."""
    values = msg.headers.get("authentication-results", ())
    wanted = {t.lower() for t in trusted}
    if not values or not wanted:
        return None
    try:
        header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {values[0]}")
    except Exception:  # a malformed header proves nothing
        return None
    if (header.authserv_id or "").lower() not in wanted:
        return None
    out = []
    for result in header.results:
        props = {f"{p.type}.{p.name}".lower(): (p.value or "").lower().strip() for p in result.properties}
        out.append(_Result((result.method or "").lower(), (result.result or "").lower(), props))
    return out


def _domain(value: str) -> str:
    return value.rsplit("@", 1)[-1].strip(". ")


def _dkim_aligned(result: _Result, domain: str) -> bool:
    """A DKIM pass whose signing domain is exactly ``domain`` (and whose identity, if given, is inside it)."""
    if result.method != "dkim" or result.result != "pass" or not domain:
        return False
    if result.props.get("header.d") != domain:
        return False
    identity = result.props.get("header.i")
    if identity:
        i_domain = _domain(identity)
        return i_domain == domain or i_domain.endswith("." + domain)
    return True


def _agent_method(results: list[_Result], address: str, dkim_domains: set[str]) -> str:
    domain = _domain(address)
    for result in results:
        if domain in dkim_domains and _dkim_aligned(result, domain):
            return "dkim"
        if result.method == "spf" and result.result == "pass" and result.props.get("smtp.mailfrom") == address:
            return "spf"
    return ""


def identify(msg: InboundMessage, token: ReplyToken | None, directory, trusted: tuple[str, ...],
             dkim_domains: tuple[str, ...] = ()) -> Identity:
    sender = (msg.from_addr or "").lower()
    claimed = directory.agent_by_address(sender) if directory is not None and sender else None
    if claimed is None:
        return Identity(None, None, "")
    if token is not None and token.agent and token.agent == claimed.login:
        return Identity(claimed, claimed, "token")
    results = topmost_results(msg, trusted)
    method = _agent_method(results, sender, {d.lower() for d in dkim_domains}) if results else ""
    if method:
        return Identity(claimed, claimed, method)
    return Identity(None, claimed, "")


@dataclass(frozen=True)
class SenderCheck:
    """What the trusted topmost Authentication-Results says of the From domain."""

    authenticated: bool  # dmarc=pass, or DKIM/SPF pass aligned with the From domain
    failed: str | None  # why the sender looks forged (dmarc=fail, spf=fail without a DKIM pass)


def check_sender(msg: InboundMessage, trusted: tuple[str, ...]) -> SenderCheck:
    results = topmost_results(msg, trusted)
    if not results:
        return SenderCheck(False, None)
    domain = _domain((msg.from_addr or "").lower())

    def about_from(r: _Result) -> bool:  # a result naming another domain says nothing of this sender
        named = r.props.get("header.from")
        return not named or named == domain

    dmarc = [r.result for r in results if r.method == "dmarc" and about_from(r)]
    dkim_pass = any(_dkim_aligned(r, domain) for r in results)
    spf = [r for r in results if r.method == "spf"]
    spf_pass = any(r.result == "pass" and _domain(r.props.get("smtp.mailfrom", "")) == domain for r in spf)
    failed = None
    if "fail" in dmarc:
        failed = f"dmarc=fail for {domain}"
    elif any(r.result == "fail" for r in spf) and not any(r.method == "dkim" and r.result == "pass" for r in results):
        failed = f"spf=fail and no DKIM pass for {domain}"
    return SenderCheck("pass" in dmarc or dkim_pass or spf_pass, failed)
