"""Signed status-page links: ``/status/<address in base64>.<signature>``.

The signature is an HMAC of the address and the customer's key generation (table
``customer_keys``, 0 until rotated) under ``[mail] secret``. ``maildesk customers
rotate-key ADDRESS`` raises the generation, so every link mailed before stops working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from maildesk.storage.models import CustomerKey

__all__ = ["check_status_token", "generation", "rotate_key", "status_token", "status_url"]


def generation(session: Session, address: str) -> int:
    return session.scalar(select(CustomerKey.generation).where(CustomerKey.address == address.lower())) or 0


def _sign(secret: str, address: str, gen: int) -> str:
    return hmac.new(secret.encode(), f"maildesk-status:{gen}:{address.lower()}".encode(), hashlib.sha256).hexdigest()[:32]


def status_token(secret: str, address: str, gen: int) -> str:
    encoded = base64.urlsafe_b64encode(address.lower().encode()).decode().rstrip("=")
    return f"{encoded}.{_sign(secret, address, gen)}"


def status_url(session: Session, config, secret: str, address: str) -> str | None:
    """The customer's status link, or None when ``[web]`` is off or status links are."""
    web = config.web
    if not web.enabled or not web.status_links:
        return None
    return f"{web.url}/status/{status_token(secret, address, generation(session, address))}"


def check_status_token(session: Session, secret: str, token: str) -> str | None:
    """The address a link is for, or None for a forged, altered or revoked one."""
    encoded, _, signature = token.partition(".")
    try:
        address = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if "@" not in address or len(address) > 320:
        return None
    expected = _sign(secret, address, generation(session, address))
    return address if hmac.compare_digest(expected, signature) else None


def rotate_key(session: Session, address: str, now: datetime) -> int:
    """A new generation for ``address``: its old links are void. Returns the new generation."""
    address = address.lower()
    row = session.get(CustomerKey, address)
    if row is None:
        row = CustomerKey(address=address, generation=0, rotated_at=now)
        session.add(row)
    row.generation += 1
    row.rotated_at = now
    return row.generation
