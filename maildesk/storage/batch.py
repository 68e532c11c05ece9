"""Group commit for processing: the writes of many messages in one go.

A :class:`Batch` is the buffered :class:`~maildesk.storage.writer.Writer`
(``pipeline.process_pending`` makes one per transaction and hands it down): the
append-only rows a message produces (events, participants, Message-IDs, outgoing mail,
auto-reply counts, attachment blobs) are collected and written with one executemany per
table when the batch is flushed. New tickets get their number up front, so their mail can
be rendered before anything is written; the session does not autoflush, so new contacts,
tickets and messages are inserted by one ORM flush.
The immediate :class:`~maildesk.storage.writer.Writer` (``process_pending(batched=False)``,
jobs, the CLI) answers the same calls by writing at once.

Reads never see a batch's unflushed rows, so a message that depends on an earlier message
of the same batch must not run in it: :meth:`Batch.guard_message` and
:meth:`Batch.guard_ticket` raise :class:`Cut` (same sender, same or referenced
Message-ID, same ticket) before the message changes anything, and the pipeline flushes
and starts a new batch. A message taking a rare path (a bounce, mail from an agent, a
survey answer) raises :class:`Isolate` through :meth:`Batch.isolate` and runs alone in a
savepoint with immediate writes. Both are signals between this module, ``inbound`` and
``pipeline``, never errors: they cannot escape ``process_pending``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from maildesk.storage.loads import AgentLoads
from maildesk.storage.models import (
    AssignState,
    AutoReply,
    Blob,
    Contact,
    Event,
    HeldNotification,
    InboxMail,
    MessageAttachment,
    MessageRef,
    Notice,
    Notified,
    Outbox,
    OutboxBody,
    Participant,
    Suppression,
    Ticket,
    TicketMessage,
)
from maildesk.storage.writer import Writer, notice_row, write_ignore
from maildesk.vocab import OPEN_STATES

__all__ = ["Batch", "Cut", "Isolate"]

# Flush order: blobs before the ORM flush (attachments point at them), the rest after it
# (they point at tickets).
_BEFORE_ORM = (Blob.__table__,)
_AFTER_ORM = (MessageRef.__table__, Participant.__table__, Event.__table__, Outbox.__table__, OutboxBody.__table__,
              AutoReply.__table__, Notice.__table__, Notified.__table__, HeldNotification.__table__)
_CORE_NEW = (Contact, Ticket, TicketMessage, MessageAttachment)  # in foreign-key order
_IDS = bindparam("ids", expanding=True)
_PREFETCH = {
    "ref": select(MessageRef.message_id, MessageRef.ticket_id).where(MessageRef.message_id.in_(_IDS)),
    "outbox": select(Outbox.message_id, Outbox.ticket_id).where(Outbox.message_id.in_(_IDS)),
    "suppressed": select(Suppression.address, Suppression.until, Suppression.reason).where(Suppression.address.in_(_IDS)),
}
_CONTACTS = select(Contact).where(Contact.address.in_(_IDS))
_AUTOREPLIES = select(AutoReply.address, AutoReply.at).where(AutoReply.address.in_(_IDS), AutoReply.at > bindparam("since"))
_INBOX = InboxMail.__table__
_FINISH = (update(_INBOX).where(_INBOX.c.id == bindparam("b_id"))
           .values({c: bindparam(f"b_{c}") for c in ("status", "outcome", "error", "ticket_id", "processed_at",
                                                       "attempts", "message_id")}))


class Cut(Exception):
    """This message reads what the batch has not written yet: flush, then run it again."""


class Isolate(Exception):
    """This message takes a rare path: run it alone, with immediate writes."""


class Batch(Writer):
    loads: AgentLoads

    def __init__(self, session: Session, loads: AgentLoads | None = None):
        super().__init__(session, loads or AgentLoads(max_age=0.0))
        self.load_changes: Counter = Counter()  # what the batches flushed in this transaction did to agent loads
        self._rows: dict[Table, list[dict]] = {}
        self._ignore: dict[Table, list[dict]] = {}
        self.blobs: dict[str, bytes] = {}
        self._finished: list[dict] = []
        self._known: dict[str, tuple[set, dict]] = {}  # what prefetch() read: kind -> (keys asked, found)
        self._reset()

    def _reset(self) -> None:
        self.senders: set[str] = set()
        self.message_ids: set[str] = set()
        self.tickets: dict[int, Ticket] = {}
        self._original: dict[int, str | None] = {}  # ticket id -> its load as read from the database
        self._last: dict[str, str] | None = None
        self._round_robin: dict[str, str] = {}
        self._next_id: int | None = None
        self.messages = 0

    # -- activation ----------------------------------------------------------------------
    def __enter__(self) -> Batch:
        self._autoflush, self.session.autoflush = self.session.autoflush, False
        return self

    def __exit__(self, *exc) -> None:
        self.session.autoflush = self._autoflush

    def detach(self, keep: Callable[[Any], bool] | None = None) -> None:
        """End a batch decided in a read snapshot: what its session created or changed
        (``keep`` filters the changed) leaves that session, still carrying its changes,
        for :meth:`write_into` to write under the lock."""
        session = self.session
        self._detached = (list(session.new), [o for o in session.dirty if keep is None or keep(o)])
        session.expunge_all()

    def write_into(self, session: Session) -> None:
        """Write what :meth:`detach` took, and everything collected, in ``session``'s transaction."""
        new, changed = self._detached
        session.add_all(changed)
        self.session = session
        with self:
            self.flush(new)

    def suspended(self) -> _Suspended:
        """Run one message the ordinary way (autoflush, an immediate :class:`Writer`) inside the batch's transaction."""
        return _Suspended(self)

    def settle(self) -> None:
        self.loads.committed(self.load_changes)

    # -- buffered writes -----------------------------------------------------------------
    def add(self, table: Table, row: dict) -> None:
        self._rows.setdefault(table, []).append(row)

    def add_ignore(self, table: Table, rows: Iterable[dict]) -> None:
        self._ignore.setdefault(table, []).extend(rows)

    # the Writer's calls, answered by collecting
    insert = add
    insert_ignore = add_ignore

    def enqueue(self, row: dict, body: dict, ref: dict | None) -> None:
        self.add(Outbox.__table__, row)
        self.add(OutboxBody.__table__, body)
        if ref is not None:
            self.add(MessageRef.__table__, ref)
        self.sent(row["message_id"])

    def notice(self, row: dict, message) -> None:
        """The message may not have its id yet: it is taken when the batch is written."""
        self.add(Notice.__table__, {**notice_row(row), "message_id": (lambda: message.id) if message is not None else None})

    def new_contact(self, address: str, name: str, now) -> Contact:
        """Inserted with the batch (a race makes the batch retry alone)."""
        contact = Contact(address=address, name=name or "", created_at=now)
        self.session.add(contact)
        return contact

    def new_ticket(self, ticket: Ticket) -> None:
        """Numbered now, inserted when the batch is flushed."""
        ticket.id = self.next_ticket_id()
        self.session.add(ticket)
        self.touch(ticket)

    def keep_blob(self, digest: str, data: bytes) -> None:
        self.blobs[digest] = data

    def blob(self, digest: str) -> bytes | None:
        return self.blobs.get(digest)

    def isolate(self, why: str) -> None:
        """Hand this message over to the one-at-a-time path (raises :class:`Isolate`)."""
        raise Isolate(why)

    def finished(self, inbox_id: int, values: dict) -> None:
        """What processing did to an inbox row, written after the ticket it names."""
        self._finished.append({"b_id": inbox_id, **{f"b_{k}": v for k, v in values.items()}})

    def round_robin(self, team: str, login: str) -> None:
        self._round_robin[team] = login

    def flush(self, new: list | None = None) -> None:
        """Write everything collected, in an order the foreign keys accept, and start afresh.
        ``new``: the objects created for the batch, when they are not (or no longer) in the session."""
        session = self.session
        for table in _BEFORE_ORM:
            self._write(table)
        self._insert_new(new)
        for team, login in self._round_robin.items():
            state = session.get(AssignState, team)
            if state is None:
                session.add(AssignState(team=team, last_login=login))
            else:
                state.last_login = login
        session.flush()
        self.load_changes.update(self._changes())
        for table in _AFTER_ORM:
            self._write(table)
        if self._finished:
            session.connection().execute(_FINISH, self._finished)
            self._finished = []
        self.blobs.clear()
        self._known = {}
        self._reset()

    def _insert_new(self, given: list | None) -> None:
        """New contacts, tickets, messages and attachments with one executemany per table
        (the ORM would spend more on its bookkeeping than the database on the rows); they
        leave the session, numbered. Other new objects are left to the ORM flush."""
        session = self.session
        new = [o for o in (session.new if given is None else given) if type(o) in _CORE_NEW]
        if given is not None:
            session.add_all(o for o in given if type(o) not in _CORE_NEW)
        if not new:
            return
        for obj in new:
            if obj in session:
                session.expunge(obj)
        conn = session.connection()
        by_type = {cls: [o for o in new if type(o) is cls] for cls in _CORE_NEW}
        _insert(conn, by_type[Contact], returning=True)
        for ticket in by_type[Ticket]:
            ticket.requester_id = ticket.requester.id
            ticket.assignee_id = ticket.assignee.id if ticket.assignee is not None else None
        _insert(conn, by_type[Ticket])  # numbered up front (next_ticket_id)
        _insert(conn, by_type[TicketMessage], returning=True)
        for message in by_type[TicketMessage]:
            for att in message.__dict__.get("attachments", ()):
                att.message_id = message.id
        _insert(conn, by_type[MessageAttachment])

    def _write(self, table: Table) -> None:
        ignore, rows = self._ignore.pop(table, None), self._rows.pop(table, None)
        if ignore:
            write_ignore(self.session, table, ignore)
        if rows and table is Notice.__table__:  # a notice names its message, whose id the ORM flush just gave it
            rows = [{k: v() if callable(v) else v for k, v in row.items()} for row in rows]
        if rows:
            self.session.connection().execute(table.insert(), rows)

    # -- guards ----------------------------------------------------------------------------
    def guard_message(self, sender: str, message_id: str | None, thread_ids: Iterable[str],
                      ticket_refs: Iterable[int]) -> None:
        """Raise :class:`Cut` when the message depends on this batch; else remember what it
        will depend on for the messages after it."""
        sender = sender.lower()
        if self.messages and (sender in self.senders or (message_id and message_id in self.message_ids)
                              or any(m in self.message_ids for m in thread_ids)
                              or any(t in self.tickets for t in ticket_refs)):
            raise Cut("depends on an earlier message of the batch")
        self.messages += 1
        self.senders.add(sender)
        if message_id:
            self.message_ids.add(message_id)

    def guard_ticket(self, ticket: Ticket | None) -> None:
        if ticket is not None and ticket.id in self.tickets:
            raise Cut(f"ticket {ticket.id} already changed in this batch")

    def touch(self, ticket: Ticket) -> None:
        """``ticket`` is changed by the current message (or was just opened by it)."""
        if ticket.id not in self.tickets:
            self.tickets[ticket.id] = ticket
            if ticket in self.session and ticket not in self.session.new:
                self._original[ticket.id] = _load_of(ticket)

    def sent(self, message_id: str) -> None:
        self.message_ids.add(message_id)

    # -- reads done once for the whole batch --------------------------------------------------
    def prefetch(self, messages, since) -> None:
        """Read in a few queries what the messages about to be handled will look up one by
        one: their Message-IDs (stored? ours?), the tickets their references name, their
        senders' contacts, suppressions and recent automatic replies (``since``: the oldest
        moment the rate limit can look back to). Only valid until the next flush."""
        mids = {m.message_id for m in messages if m.message_id}
        refs = mids | {r for m in messages for r in m.thread_ids}
        senders = {(m.from_addr or m.mail_from).lower() for m in messages} - {""}
        asked = {"ref": refs, "outbox": mids, "suppressed": senders, "contact": senders, "autoreplies": senders}
        found: dict[str, dict] = {kind: {} for kind in asked}
        for kind, query in _PREFETCH.items():
            if asked[kind]:
                for key, *value in self.session.execute(query, {"ids": list(asked[kind])}):
                    found[kind][key] = tuple(value)
        if senders:
            found["contact"] = {c.address: c for c in self.session.scalars(_CONTACTS, {"ids": list(senders)})}
            for address, at in self.session.execute(_AUTOREPLIES, {"ids": list(senders), "since": since}):
                found["autoreplies"].setdefault(address, []).append(at)
        self._known = {kind: (asked[kind], found[kind]) for kind in asked}

    def known(self, kind: str, key) -> tuple[bool, object]:
        """(True, what was found or None) when :meth:`prefetch` read ``key``; (False, None):
        ask the database. Found: a row's columns as a tuple ("ref", "outbox", "suppressed"),
        a Contact, or the times of recent automatic replies."""
        asked, found = self._known.get(kind, ((), {}))
        return (True, found.get(key)) if key in asked else (False, None)

    # -- reads that must include this batch ------------------------------------------------
    def next_ticket_id(self) -> int:
        """The number of a new ticket, taken from the database's own counter."""
        session = self.session
        if session.get_bind().dialect.name == "postgresql":
            return session.execute(text("SELECT nextval(pg_get_serial_sequence('tickets', 'id'))")).scalar_one()
        if self._next_id is None:  # SQLite: the write lock is held, nobody else numbers tickets now
            seq = session.execute(text("SELECT seq FROM sqlite_sequence WHERE name = 'tickets'")).scalar()
            top = session.execute(select(func.max(Ticket.id))).scalar()
            self._next_id = max(seq or 0, top or 0)
        self._next_id += 1
        return self._next_id

    def open_tickets(self, query) -> dict[str, int]:
        """Open tickets per agent login, as this transaction has changed them so far."""
        loads = self.loads.current(self.session, query, self.load_changes)
        loads.update(self._changes())
        return dict(loads)

    def _changes(self) -> Counter:
        """What this batch's tickets did to agent loads (not flushed yet)."""
        changes: Counter = Counter()
        for ticket_id, ticket in self.tickets.items():
            before = self._original.get(ticket_id)
            if before:
                changes[before] -= 1
            now = _load_of(ticket)
            if now:
                changes[now] += 1
        return changes

    def last_assigned(self, query) -> dict[str, str]:
        if self._last is None:
            self._last = dict(self.session.execute(query).all())
        return {**self._last, **self._round_robin}


def _insert(conn, objects: list, returning: bool = False) -> None:
    """INSERT ``objects`` (all of one mapped class) as rows of the attributes they were
    given (the others take the column defaults); ``returning``: fill in their new ids."""
    if not objects:
        return
    table = type(objects[0]).__table__
    columns = [c.key for c in table.columns]
    groups: dict[tuple, list] = {}
    for obj in objects:
        keys = tuple(k for k in columns if k in obj.__dict__ and not (k == "id" and obj.__dict__[k] is None))
        groups.setdefault(keys, []).append(obj)
    for keys, objs in groups.items():
        rows = [{k: obj.__dict__[k] for k in keys} for obj in objs]
        if returning and "id" not in keys:
            ids = conn.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows).scalars().all()
            for obj, new_id in zip(objs, ids, strict=True):
                obj.id = new_id
        else:
            conn.execute(table.insert(), rows)


def _load_of(ticket: Ticket) -> str | None:
    """The agent whose open-ticket count this ticket adds to, if any."""
    assignee: Any = ticket.assignee
    return assignee.login if assignee is not None and ticket.status in OPEN_STATES else None


class _Suspended:
    def __init__(self, batch: Batch):
        self.batch = batch

    def __enter__(self) -> Writer:
        session = self.batch.session
        session.autoflush = True
        return Writer(session, self.batch.loads)

    def __exit__(self, *exc) -> None:
        self.batch.session.autoflush = False
