"""The database follows config/agents.toml: agent rows are created, updated and deactivated."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from maildesk.storage.models import Agent

__all__ = ["db_agent", "sync_agents"]


def sync_agents(session: Session, directory) -> dict[str, int]:
    """Upsert one row per configured agent; agents no longer in the file become inactive
    (their tickets keep pointing at them). Returns counts for the log."""
    rows = {a.login: a for a in session.scalars(select(Agent))}
    counts = {"added": 0, "updated": 0, "deactivated": 0}
    configured = {a.login: a for a in directory.agents} if directory is not None else {}
    # Free addresses first: an address may move from one login to another in one edit.
    for login, row in rows.items():
        cfg = configured.get(login)
        if cfg is None or row.address != cfg.address.lower():
            row.address = f"{login}@inactive.invalid" if cfg is None else row.address + ".old"
    session.flush()
    for login, cfg in configured.items():
        row = rows.get(login)
        values = {"name": cfg.name, "address": cfg.address.lower(), "role": cfg.role, "active": True}
        if row is None:
            session.add(Agent(login=login, rr_counter=0, **values))
            counts["added"] += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            counts["updated"] += 1
    for login, row in rows.items():
        if login not in configured and row.active:
            row.active = False
            counts["deactivated"] += 1
    session.flush()
    return counts


_BY_LOGIN = select(Agent).where(Agent.login == bindparam("login"))


def db_agent(session: Session, login: str) -> Agent | None:
    return session.scalars(_BY_LOGIN, {"login": login}).first()
