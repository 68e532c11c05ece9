"""Signed reply addresses: ``support+<token>@domain``.

A token names a ticket (and, in mail to an agent, the agent; in a survey, the score)
and carries a truncated HMAC-SHA256 (128 bits) over those fields with ``[mail] secret``::

    t1042-<mac>                     ticket 1042 (mail to the customer)
    t1042-a-bob-<mac>               ticket 1042, agent "bob"
    s1042-4-<mac>                   survey answer: ticket 1042, score 4

Every outgoing mail also has its own envelope sender (VERP), a bounce address naming the
random part of that mail's Message-ID::

    support+b<key>-<mac>@domain     bounces of the mail whose Message-ID is <key@domain>

Tokens are lower case (MTAs may fold a local part's case) and only use characters valid
in an unquoted local part. A forged or altered token does not verify and is ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from maildesk.parse.addresses import support_tag, tagged_address

__all__ = ["ReplyToken", "bounce_address", "find_token", "is_bounce_token", "make_address", "make_token", "new_key",
           "verify_bounce", "verify_token"]

_MAC_LEN = 16  # bytes of HMAC kept: 128 bits
_BOUNCE_MAC_LEN = 10  # 80 bits, on top of a 128-bit random key: keeps the address under 64 characters
_TOKEN = re.compile(r"^(?P<kind>[ts])(?P<ticket>\d{1,18})(?:-a-(?P<agent>[a-z0-9_.]{1,64}))?(?:-(?P<score>\d))?-(?P<mac>[a-z2-7]{26})$")
_BOUNCE = re.compile(r"^b(?P<key>[a-z2-7]{26})-(?P<mac>[a-z2-7]{16})$")


@dataclass(frozen=True)
class ReplyToken:
    kind: str  # "t" reply, "s" survey
    ticket: int
    agent: str | None = None
    score: int | None = None


def _mac(secret: str, payload: str, length: int = _MAC_LEN) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:length]
    return base64.b32encode(digest).decode().rstrip("=").lower()


def new_key() -> str:
    """128 random bits from :mod:`secrets` as 26 lower-case base32 characters (the random
    part of our Message-IDs and bounce addresses; never from :mod:`random`)."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def bounce_address(secret: str, support_address: str, key: str) -> str:
    """The envelope sender for the mail whose Message-ID holds ``key``."""
    payload = f"b{key}"
    return tagged_address(support_address, f"{payload}-{_mac(secret, 'bounce:' + payload, _BOUNCE_MAC_LEN)}")


def is_bounce_token(token: str) -> bool:
    return token[:1].lower() == "b"


def verify_bounce(secret: str, token: str) -> str | None:
    """The key of a bounce token whose MAC is right, else None."""
    m = _BOUNCE.match(token.lower())
    if not m or not hmac.compare_digest(_mac(secret, f"bounce:b{m['key']}", _BOUNCE_MAC_LEN), m["mac"]):
        return None
    return m["key"]


def _payload(tok: ReplyToken) -> str:
    return f"{tok.kind}{tok.ticket}" + (f"-a-{tok.agent}" if tok.agent else "") + (f"-{tok.score}" if tok.score is not None else "")


def make_token(secret: str, tok: ReplyToken) -> str:
    if tok.agent and not re.fullmatch(r"[a-z0-9_.]{1,64}", tok.agent):
        raise ValueError(f"agent login {tok.agent!r} cannot go into a reply token")
    payload = _payload(tok)
    return f"{payload}-{_mac(secret, payload)}"


def make_address(secret: str, support_address: str, tok: ReplyToken) -> str:
    return tagged_address(support_address, make_token(secret, tok))


def verify_token(secret: str, token: str) -> ReplyToken | None:
    """The token's content if its MAC is right, else None."""
    m = _TOKEN.match(token.lower())
    if not m:
        return None
    tok = ReplyToken(m["kind"], int(m["ticket"]), m["agent"], int(m["score"]) if m["score"] else None)
    if not hmac.compare_digest(_mac(secret, _payload(tok)), m["mac"]):
        return None
    return tok


def find_token(addresses: tuple[str, ...], support: tuple[str, ...]) -> list[str]:
    """The ``+token`` parts of recipient addresses that are sub-addresses of a support address."""
    bases = {a.lower() for a in support}
    return [tag for tag in (support_tag(addr, bases) for addr in addresses) if tag]
