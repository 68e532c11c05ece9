"""The one object ticket code writes through: immediate, or buffered for a batch.

The functions that change tickets (:mod:`maildesk.tickets.state`, :mod:`maildesk.process`,
the notifications in :mod:`maildesk.outgoing`) take a :class:`Writer` as their first
argument and never ask whether a batch is running: they read through ``writer.session``
and write through the writer's methods. Two implementations answer the same calls:

* :class:`Writer` itself writes at once in the session's transaction
  (``process_pending(batched=False)``, the scheduler's jobs, the CLI, a message that runs alone);
* :class:`maildesk.storage.batch.Batch` collects the rows and writes them with one
  executemany per table when it is flushed, and may cut or isolate a message.

Whoever owns the transaction picks the implementation (``process.pipeline`` for inbound
mail, ``Writer(session)`` everywhere else) and passes it down.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from maildesk.storage.models import AssignState, Blob, Contact, MessageRef, Notice, Outbox, OutboxBody, Ticket
from maildesk.storage.rawblob import store_large_blobs

__all__ = ["Writer", "opened_here", "write_ignore"]

_INSERT: dict[Table, Any] = {}  # a Core insert per table, built once: building costs more than running it
_INSERT_IGNORE: dict[tuple[str, Table], Any] = {}
_CONTACT = select(Contact).where(Contact.address == bindparam("address"))


def write_ignore(session: Session, table: Table, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING of ``rows`` into ``table`` now, on SQLite and PostgreSQL alike."""
    if table is Blob.__table__:
        rows = store_large_blobs(session, rows)  # SQLite: large attachments in pieces, no bound copy kept
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    stmt = _INSERT_IGNORE.get((dialect, table))
    if stmt is None:
        stmt = (postgresql if dialect == "postgresql" else sqlite).insert(table).on_conflict_do_nothing()
        _INSERT_IGNORE[(dialect, table)] = stmt
    session.execute(stmt, rows[0] if len(rows) == 1 else rows)


def _insert(table: Table):
    stmt = _INSERT.get(table)
    if stmt is None:
        stmt = _INSERT[table] = insert(table)
    return stmt


def opened_here(session: Session, ticket: Ticket) -> bool:
    """True for a ticket opened in this session and not written yet: it has no rows of its
    own in the database (messages, participants), so reading them can be skipped."""
    return ticket in session.new


class Writer:
    """Immediate writes in ``session``'s transaction; the base every writer extends.

    ``loads``: the desk's count of open tickets per agent (:class:`maildesk.storage.loads.AgentLoads`),
    told by :meth:`settle` what the transaction may have changed."""

    def __init__(self, session: Session, loads=None):
        self.session = session
        self.loads = loads

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc) -> None:
        return None

    # -- rows -----------------------------------------------------------------------------
    def insert(self, table: Table, row: dict) -> None:
        """One append-only row (an event, an automatic reply, a held notification...)."""
        self.session.execute(_insert(table), row)

    def insert_ignore(self, table: Table, rows: Iterable[dict]) -> None:
        """Rows that may exist already (INSERT ... ON CONFLICT DO NOTHING)."""
        write_ignore(self.session, table, list(rows))

    def enqueue(self, row: dict, body: dict, ref: dict | None) -> None:
        """An outgoing mail (its ``outbox`` row and body) and, about a ticket, its Message-ID."""
        session = self.session
        session.execute(_insert(Outbox.__table__), row)
        session.execute(_insert(OutboxBody.__table__), body)
        if ref is not None:  # our Message-IDs are unique (128 random bits): a plain insert
            session.execute(_insert(MessageRef.__table__), ref)

    def notice(self, row: dict, message) -> None:
        """A notification to render later, naming ``message`` (a TicketMessage or None)."""
        if message is not None and message.id is None:
            self.session.flush()
        self.session.execute(_insert(Notice.__table__), {**notice_row(row), "message_id": message.id if message is not None else None})

    def new_contact(self, address: str, name: str, now) -> Contact:
        """A contact for an address not found (another instance may be adding it right now)."""
        write_ignore(self.session, Contact.__table__, [{"address": address, "name": name or "", "created_at": now}])
        return self.session.scalars(_CONTACT, {"address": address}).one()

    def new_ticket(self, ticket: Ticket) -> None:
        """Add a new ticket; it has its number when this returns."""
        self.session.add(ticket)
        self.session.flush()

    def round_robin(self, team: str, login: str) -> None:
        """Remember the last agent ``team``'s round robin assigned."""
        state = self.session.get(AssignState, team)
        if state is None:
            write_ignore(self.session, AssignState.__table__, [{"team": team, "last_login": login}])
        else:
            state.last_login = login

    def keep_blob(self, digest: str, data: bytes) -> None:
        """An attachment's content, for notifications that copy it before it is written."""

    def blob(self, digest: str) -> bytes | None:
        """Content kept by :meth:`keep_blob` and not written yet; None: read the database."""
        return None

    def flush(self) -> None:
        """Write what was collected (nothing is, here)."""

    def settle(self) -> None:
        """After the transaction: the agent loads it changed are counted afresh."""
        if self.loads is not None:
            self.loads.forget()

    # -- what a message may depend on -------------------------------------------------------
    def guard_message(self, sender: str, message_id: str | None, thread_ids: Iterable[str],
                      ticket_refs: Iterable[int]) -> None:
        """A message about to be handled; a batch may refuse it (it depends on the batch)."""

    def guard_ticket(self, ticket: Ticket | None) -> None:
        """The ticket the message threads to; a batch may refuse it (changed in the batch)."""

    def touch(self, ticket: Ticket) -> None:
        """``ticket`` is changed by the current message (or was just opened by it)."""

    def isolate(self, why: str) -> None:
        """The message takes a rare path: a batch hands it over to run alone; here it runs on."""

    # -- reads -------------------------------------------------------------------------------
    def known(self, kind: str, key) -> tuple[bool, object]:
        """(True, what was read ahead for ``key``) or (False, None): ask the database."""
        return False, None

    def open_tickets(self, query) -> dict[str, int]:
        """Open tickets per agent login, as this transaction has changed them so far."""
        return dict(self.session.execute(query).all())

    def last_assigned(self, query) -> dict[str, str]:
        """The last agent each team's round robin assigned."""
        return dict(self.session.execute(query).all())


def notice_row(row: dict) -> dict:
    """A notice row as inserted: pending and due at once unless ``row`` says otherwise."""
    return {"status": "pending", "attempts": 0, "next_attempt_at": row["created_at"], **row}
