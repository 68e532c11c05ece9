"""The web view's tables (maildesk.web): sign-in links, sign-in requests, customer keys.

Every model is importable from :mod:`maildesk.storage.models`, which imports this module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from maildesk.storage.models.base import Base, BigId

__all__ = ["CustomerKey", "SigninRequest", "WebToken"]


class WebToken(Base):
    """A one-time sign-in link: only its SHA-256 is stored, so a copy of the database signs nobody in."""

    __tablename__ = "web_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SigninRequest(Base):
    """One sign-in request, counted per address and per client for the rate limit."""

    __tablename__ = "web_signin_requests"
    __table_args__ = (Index("ix_web_signin_requests_address_at", "address", "at"), Index("ix_web_signin_requests_client_at", "client", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    address: Mapped[str] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(100))


class CustomerKey(Base):
    """A customer's status-page key generation: rotating it (``maildesk customers rotate-key``)
    makes every status link mailed to them before void."""

    __tablename__ = "customer_keys"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    rotated_at: Mapped[datetime]
