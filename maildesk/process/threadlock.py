"""Per-thread serialization of processing across instances sharing one PostgreSQL database.

Several instances process the same inbox: each claims its rows with ``FOR UPDATE SKIP
LOCKED``, so no row is handled twice. What could still go wrong is two *related* messages
decided at the same time on two instances: a customer's reply and the mail it answers, or
two replies to a brand-new ticket. Neither sees the other's uncommitted ticket, and the
thread forks into two tickets. This module prevents that in two steps, inside the
processing transaction, before anything is decided:

1. :func:`defer_younger` leaves for a later round each claimed message whose envelope
   sender has an older mail still pending outside this chunk (being processed by another
   instance, or not yet claimed), or which refers to a Message-ID found in the header of
   such an older pending mail: a requester's mails, and a mail and the replies to it, are
   decided in the order they were accepted.
2. :func:`lock_threads` takes a transaction-level advisory lock
   (``pg_advisory_xact_lock``) on a 64-bit hash of every thread key of the chunk's
   messages: their Message-ID, the Message-IDs they reference, the requester's address.
   The keys are taken sorted, in one statement, so two chunks never wait for each other
   in a cycle. A second instance touching the same thread waits until the first commits,
   then (READ COMMITTED: each statement sees the latest commits) finds its ticket.

What remains is documented in docs/scaling.md: two related messages whose intake
transactions are still uncommitted when the other is decided are not seen (one instance
has the same window, a few milliseconds wide). SQLite has one writer: nothing to do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import LargeBinary, bindparam, func, select, text
from sqlalchemy.orm import Session

from maildesk.parse.message import InboundMessage
from maildesk.storage.models import InboxMail, MessageRef

__all__ = ["defer_younger", "lock_threads", "thread_keys"]

HEADER_BYTES = 16384  # where a pending mail's Message-ID is looked for
_LOCK = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS t(k, n) ORDER BY n")
_OLDEST = (select(func.lower(InboxMail.mail_from), func.min(InboxMail.id))
           .where(InboxMail.status == "pending", InboxMail.id.not_in(bindparam("ids", expanding=True)),
                  func.lower(InboxMail.mail_from).in_(bindparam("senders", expanding=True)))
           .group_by(func.lower(InboxMail.mail_from)))
_PARENT_PENDING = (select(InboxMail.id)
                   .where(InboxMail.status == "pending", InboxMail.id < bindparam("me"),
                          InboxMail.id.not_in(bindparam("ids", expanding=True)),
                          func.position(bindparam("mid", type_=LargeBinary).op("IN")(func.substring(InboxMail.raw, 1, HEADER_BYTES))) > 0)
                   .limit(1))
_NAMESPACE = b"maildesk-thread:"


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(_NAMESPACE + key.encode("utf-8", "surrogateescape"), digest_size=8).digest(),
                          "big", signed=True)


def _known(session: Session, ids) -> set[str]:
    return set(session.scalars(select(MessageRef.message_id).where(MessageRef.message_id.in_(list(ids)))))


def thread_keys(msg: InboundMessage) -> set[int]:
    """The lock keys of one message: its Message-ID, those it references, its requester."""
    keys = {f"id:{m}" for m in (msg.message_id, *msg.thread_ids) if m}
    for address in (msg.sender, msg.mail_from.lower()):
        if address:
            keys.add(f"from:{address}")
    return {_hash(k) for k in keys}


def lock_threads(session: Session, messages: Iterable[InboundMessage]) -> int:
    """Wait for and hold (until the transaction ends) the locks of ``messages``' threads."""
    keys = sorted(set().union(*(thread_keys(m) for m in messages)))
    if keys:
        session.execute(_LOCK, {"keys": keys})
    return len(keys)


def defer_younger(session: Session, rows: list, parsed: dict[int, InboundMessage]) -> tuple[list, list]:
    """Split claimed ``rows`` (each with ``.id``) into those to decide now and those to leave
    pending for a later round: a row waits for an older pending row not among ``rows`` (held
    by another instance) from the same envelope sender, or whose first bytes (its header)
    contain a Message-ID the row refers to (the mail it answers, not decided yet) when none
    of those it refers to is known already (a reply to a known mail has its ticket)."""
    if not rows:
        return rows, []
    ids = [r.id for r in rows]
    senders = sorted({parsed[r.id].mail_from.lower() for r in rows if parsed[r.id].mail_from})
    oldest = dict(session.execute(_OLDEST, {"ids": ids, "senders": senders}).all()) if senders else {}
    referred = {m for r in rows for m in parsed[r.id].thread_ids}
    known = _known(session, referred) if referred else set()
    known |= {parsed[r.id].message_id for r in rows if parsed[r.id].message_id}  # decided before it, in this transaction
    now, later = [], []
    for r in rows:
        msg = parsed[r.id]
        first = oldest.get(msg.mail_from.lower())
        waits = first is not None and first < r.id
        if not waits and msg.thread_ids and not known.intersection(msg.thread_ids):  # none known yet: is its parent pending?
            for mid in msg.thread_ids:
                if session.execute(_PARENT_PENDING, {"ids": ids, "me": r.id, "mid": mid.encode("utf-8", "surrogateescape")}).first():
                    waits = True
                    break
        (later if waits else now).append(r)
    return now, later
