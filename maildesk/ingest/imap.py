"""IMAP mailboxes as a mail source: fetch, commit, and only then mark / move / delete.

One :class:`ImapSource` per ``[[imap]]`` table runs its blocking imapclient loop in its
own thread, so a broken mailbox never slows another one, the SMTP listener or the loop::

    connect + login (a rejected XOAUTH2 token: the token command runs again, once)
    SELECT folder -> UIDVALIDITY; differs from imap_state: start again from UID 0
    round:  UID SEARCH UID last+1:*        new mail is found by UID, never by \\Seen
            per batch (batch_size):  FETCH BODY.PEEK[] (leaves \\Seen alone), commit the
            raw mails + the UID mark in ONE transaction, then \\Seen / MOVE (or
            COPY + \\Deleted + EXPUNGE) / \\Deleted + EXPUNGE
    wait:   IDLE until EXISTS (renewed every idle_timeout), or poll_interval without IDLE

The last UID only passes UIDs whose messages are committed (or gone): a message that
fails to fetch is skipped this round and retried in the next while the mail after it is
stored (remembered above the mark; after a restart it is fetched again and the intake's
sha256 dedupe stores it once). With after = "seen" the saved mark waits for \\Seen, so
a crash between commit and STORE means that batch is fetched (and flagged) again. Any
connection, login, server or storage failure is logged and retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from maildesk.config.load import ImapConfig
from maildesk.daemon.logsetup import bind
from maildesk.errors import MaildeskError
from maildesk.ingest.imapconn import ConnectionLost, connect, describe_error
from maildesk.ingest.intake import Intake, RawMail
from maildesk.ingest.lease import MailboxLease
from maildesk.storage.models import ImapState

__all__ = ["ImapSource", "UidMark"]

log = logging.getLogger("maildesk.ingest.imap")

IDLE_CHECK = 0.5  # seconds between looks at the stop flag while idling
MAX_BATCH_BYTES = 32 * 1024 * 1024  # a batch also stops growing at this many bytes
LOUD_FAILURES = 5  # from this many failed fetches of one UID on, log at ERROR
SEEN, DELETED = b"\\Seen", b"\\Deleted"


class UidMark:
    """Which UIDs of one folder (one UIDVALIDITY) are committed.

    ``last``: every message with a UID up to it is committed (``saved``: the value in
    imap_state). ``done`` holds committed UIDs above it (behind a message that failed to
    fetch), ``failed`` counts failures per UID, ``unacked`` are committed UIDs whose
    \\Seen / move / delete has not reached the server yet.
    """

    def __init__(self, uidvalidity: int, last: int):
        self.uidvalidity, self.last, self.saved = uidvalidity, last, last
        self.done: set[int] = set()
        self.failed: dict[int, int] = {}
        self.unacked: set[int] = set()

    def pending(self, present: Iterable[int]) -> list[int]:
        """The UIDs still to fetch among those the server has above the mark (sorted);
        forgets failures of messages that are gone (expunged by someone else)."""
        present = {u for u in present if u > self.last}
        for uid in set(self.failed) - present:
            del self.failed[uid]
        return sorted(present - self.done)

    def advance(self, present: Iterable[int], committed: Iterable[int]) -> int:
        """The mark after ``committed`` is stored: just below the lowest present UID that
        is not committed, else the highest committed one."""
        done = self.done | set(committed)
        waiting = [u for u in present if u > self.last and u not in done]
        if waiting:
            return max(self.last, min(waiting) - 1)
        return max(self.last, max(done, default=self.last))

    def commit(self, committed: Iterable[int], new_last: int) -> None:
        for uid in committed:
            self.failed.pop(uid, None)
        self.last = new_last
        self.done = {u for u in self.done | set(committed) if u > new_last}


_HEADER = re.compile(rb"^(Return-Path|Delivered-To|X-Original-To):[ \t]*<?([^>\r\n]*)>?[ \t]*\r?$", re.I | re.M)


def _envelope(raw: bytes) -> tuple[str, tuple[str, ...]]:
    """Envelope sender and recipient as the final MTA recorded them (topmost headers)."""
    ends = [i for i in (raw.find(b"\n\r\n", 0, 65536), raw.find(b"\n\n", 0, 65536)) if i >= 0]
    head = raw[: min(ends, default=65536)]
    found: dict[str, str] = {}
    for name, value in _HEADER.findall(head):
        found.setdefault(name.lower().decode(), value.strip().decode("ascii", "replace"))
    rcpt = found.get("x-original-to") or found.get("delivered-to")
    return found.get("return-path", ""), (rcpt,) if rcpt else ()


def _announced(client: IMAPClient) -> bool:
    """Whether an answer to one of our commands carried an untagged EXISTS (new mail the
    round may have missed); imaplib keeps those aside, this reads and clears them."""
    _, data = client._imap.response("EXISTS")
    return bool(data and data[0] is not None)


class ImapSource:
    """One ``[[imap]]`` mailbox: ``await start()`` runs it in a thread, ``await stop()`` ends it."""

    def __init__(self, box: ImapConfig, intake: Intake, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 connector: Callable[[ImapConfig], IMAPClient] = connect):
        self.box, self.intake, self.clock, self.connector = box, intake, clock, connector
        self.source, self.queue = f"imap:{box.name}", box.queue or box.name
        self.mark: UidMark | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: IMAPClient | None = None
        self._healthy = False

    # -- lifecycle (asyncio side) ----------------------------------------------------------
    async def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=f"imap-{self.box.name}", daemon=True)
        self._thread.start()

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to stop (IDLE notices within IDLE_CHECK seconds) and wait for it;
        a command stuck on a dead connection is cut by closing the socket."""
        self._stop.set()
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        cut = False
        while self._thread.is_alive() and time.monotonic() < deadline:
            if not cut and time.monotonic() > deadline - timeout / 2 and self._client is not None:
                cut = True
                with contextlib.suppress(Exception):
                    self._client.socket().shutdown(socket.SHUT_RDWR)
            await asyncio.sleep(0.02)
        if self._thread.is_alive():
            log.warning("imap mailbox %s did not stop within %.0fs; leaving it behind", self.box.name, timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the connection loop (worker thread) -----------------------------------------------
    def run(self) -> None:
        """Connect, read, wait, repeat; reconnect with backoff after any failure."""
        box = self.box
        failures = 0
        lease = MailboxLease(self.intake.store, box.name)
        standing_by = False
        with bind(imap=box.name):
            while not self.stopping:
                self._healthy = False
                try:
                    if not lease.acquire():
                        if not standing_by:
                            log.info("another instance reads this mailbox; standing by to take over")
                        standing_by = True
                        self._stop.wait(box.poll_interval)
                        continue
                    standing_by = False
                    self._session()
                except Exception as exc:  # every failure means: log, back off, reconnect
                    if self.stopping:
                        break
                    failures = 1 if self._healthy else failures + 1
                    delay = min(box.retry_max, box.retry_base * 2 ** (failures - 1))
                    known = isinstance(exc, (IMAPClientError, OSError, ConnectionLost, MaildeskError))
                    log.log(logging.WARNING if known else logging.ERROR, "%s:%d: %s; reconnecting in %.1fs (failure %d)",
                            box.host, box.port, describe_error(exc), delay, failures, exc_info=not known)
                    self._stop.wait(delay)
            lease.release()
            log.info("stopped")

    def _session(self) -> None:
        box = self.box
        client = self.connector(box)
        self._client = client
        finished = False
        try:
            caps = set(client.capabilities())
            self._select(client)
            idle = b"IDLE" in caps
            log.info("connected to %s:%d, folder %s, %s", box.host, box.port, box.folder,
                     "waiting with IDLE" if idle else f"polling every {box.poll_interval:g}s")
            if box.after in ("move", "delete"):
                self._sweep(client)
            while not self.stopping:
                self._round(client, caps)
                self._healthy = True
                if self.stopping:
                    break
                if _announced(client):
                    continue  # mail arrived while the round ran; IDLE would not report it again
                pause = box.poll_interval if self.mark.failed or self.mark.unacked else None
                if idle:
                    self._idle(client, min(pause or box.idle_timeout, box.idle_timeout))
                else:
                    self._stop.wait(pause or box.poll_interval)
            finished = True
        finally:
            self._client = None
            with contextlib.suppress(Exception):  # the connection may already be gone
                client.logout() if finished else client.shutdown()

    def _select(self, client: IMAPClient) -> None:
        box = self.box
        info = client.select_folder(box.folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        if box.after == "move" and not client.folder_exists(box.move_to):
            try:
                client.create_folder(box.move_to)
                log.info("created folder %s for processed mail", box.move_to)
            except IMAPClientAbortError:
                raise
            except IMAPClientError as exc:  # mail is still stored; moving it waits for the folder
                log.warning("cannot create folder %s for processed mail: %s", box.move_to, describe_error(exc))
        with self.intake.store.transaction() as session:
            row = session.get(ImapState, (box.name, box.folder))
            if row is None:
                log.info("first visit of %s (UIDVALIDITY %d); reading it from the start", box.folder, uidvalidity)
                row = ImapState(mailbox=box.name, folder=box.folder, uidvalidity=uidvalidity, last_uid=0,
                                updated_at=self.clock())
                session.add(row)
            elif row.uidvalidity != uidvalidity:
                log.warning("UIDVALIDITY of %s changed from %d to %d (folder recreated or restored?); "
                            "re-reading it from scratch, identical messages are not stored twice",
                            box.folder, row.uidvalidity, uidvalidity)
                row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, 0, self.clock()
            last = row.last_uid
        if self.mark is None or self.mark.uidvalidity != uidvalidity:
            self.mark = UidMark(uidvalidity, last)
        else:  # a reconnect: keep what this process knows above the mark
            self.mark.last, self.mark.saved = max(self.mark.last, last), max(self.mark.saved, last)

    def _sweep(self, client: IMAPClient) -> None:
        """after = move/delete: a message at or below the mark still in the folder is
        committed but its move/delete was lost (crash, dropped connection): redo it."""
        mark = self.mark
        if mark.last:
            left = [u for u in client.search(["UID", f"1:{mark.last}"]) if u <= mark.last]
            if left:
                log.info("%d stored message(s) still in %s; finishing their %s", len(left), self.box.folder, self.box.after)
                mark.unacked.update(left)

    # -- one round: everything new, in batches ---------------------------------------------
    def _round(self, client: IMAPClient, caps: set[bytes]) -> None:
        mark = self.mark
        if mark.unacked:
            self._acknowledge(client, caps, sorted(mark.unacked))
        present = [u for u in client.search(["UID", f"{mark.last + 1}:*"]) if u > mark.last]
        todo = mark.pending(present)
        while todo and not self.stopping:
            batch = self._take(client, todo)
            todo = todo[len(batch):]
            raws = self._fetch(client, batch)
            for uid in batch:
                if uid not in raws:
                    self._failed(uid)
            committed = sorted(raws)
            new_last = mark.advance(present, committed)
            self._commit([raws[u] for u in committed], new_last)
            mark.commit(committed, new_last)
            if committed:
                log.info("stored %d message(s), UIDs %d-%d; last UID %d", len(committed), committed[0], committed[-1], new_last)
                self._acknowledge(client, caps, committed)

    def _take(self, client: IMAPClient, todo: list[int]) -> list[int]:
        """The next batch: at most batch_size messages and MAX_BATCH_BYTES (at least one)."""
        head = todo[: self.box.batch_size]
        sizes = client.fetch(head, ["RFC822.SIZE"])
        batch, total = [], 0
        for uid in head:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if batch and total + size > MAX_BATCH_BYTES:
                break
            batch.append(uid)
            total += size
        return batch

    def _fetch(self, client: IMAPClient, uids: list[int]) -> dict[int, bytes]:
        """Raw bytes by UID; a message the server does not deliver is left out."""
        try:
            data = client.fetch(uids, ["BODY.PEEK[]"])
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:  # NO/BAD for the batch: find the culprit one by one
            if len(uids) == 1:
                log.debug("FETCH of UID %d refused: %s", uids[0], exc)
                return {}
            out: dict[int, bytes] = {}
            for uid in uids:
                out.update(self._fetch(client, [uid]))
            return out
        wanted = set(uids)
        return {uid: bytes(item[b"BODY[]"]) for uid, item in data.items()
                if uid in wanted and item.get(b"BODY[]") is not None}

    def _failed(self, uid: int) -> None:
        count = self.mark.failed.get(uid, 0) + 1
        self.mark.failed[uid] = count
        log.log(logging.ERROR if count >= LOUD_FAILURES else logging.WARNING,
                "UID %d in %s could not be fetched (failure %d); skipped this round, retried in the next",
                uid, self.box.folder, count)

    def _commit(self, raws: list[bytes], new_last: int) -> None:
        """The raw mails and the UID mark, in one transaction. With after = "seen" the
        saved mark only covers mail already flagged \\Seen: after a crash between the
        commit and the STORE that batch is fetched again (and stored once, by sha256)."""
        value = new_last if self.box.after != "seen" else self._acked_mark()
        items = []
        for raw in raws:
            mail_from, rcpt_to = _envelope(raw)
            items.append(RawMail(raw=raw, mail_from=mail_from, rcpt_to=rcpt_to, source=self.source, queue=self.queue))
        if items:
            self.intake.store_batch(items, extra=lambda session: self._write_mark(session, value))
            self.mark.saved = max(self.mark.saved, value)
        elif value > self.mark.saved:
            self._save(value)

    def _acked_mark(self) -> int:
        mark = self.mark
        return min([mark.last, *(u - 1 for u in mark.unacked)])

    def _save(self, value: int) -> None:
        with self.intake.store.transaction() as session:
            self._write_mark(session, value)
        self.mark.saved = max(self.mark.saved, value)

    def _write_mark(self, session, value: int) -> None:
        box, mark = self.box, self.mark
        row = session.get(ImapState, (box.name, box.folder))
        if row is None:
            row = ImapState(mailbox=box.name, folder=box.folder, uidvalidity=mark.uidvalidity, last_uid=0)
            session.add(row)
        if row.uidvalidity != mark.uidvalidity:
            row.uidvalidity, row.last_uid = mark.uidvalidity, 0
        row.last_uid, row.updated_at = max(row.last_uid or 0, value), self.clock()

    def _acknowledge(self, client: IMAPClient, caps: set[bytes], uids: list[int]) -> None:
        """\\Seen, move or delete committed messages. A refusal (NO) is logged and retried
        at the next round; a broken connection propagates (the sweep or the next round
        of this process redoes it)."""
        box, mark = self.box, self.mark
        mark.unacked.update(uids)
        try:
            if box.after == "seen":
                client.add_flags(uids, [SEEN], silent=True)
            elif box.after == "move" and b"MOVE" in caps:
                client.move(uids, box.move_to)
            else:
                if box.after == "move":
                    client.copy(uids, box.move_to)
                client.add_flags(uids, [DELETED], silent=True)
                if b"UIDPLUS" in caps:
                    client.uid_expunge(uids)
                else:  # plain EXPUNGE also removes what others marked \Deleted: the folder is ours
                    client.expunge()
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            log.warning("could not %s %d stored message(s): %s; retrying next round",
                        "mark \\Seen" if box.after == "seen" else box.after, len(uids), exc)
            return
        mark.unacked.difference_update(uids)
        if box.after == "seen" and self._acked_mark() > mark.saved:
            self._save(self._acked_mark())

    # -- waiting for new mail --------------------------------------------------------------
    def _idle(self, client: IMAPClient, timeout: float) -> None:
        """IDLE until new mail, ``timeout`` seconds, or stop; BYE/EOF raise."""
        client.idle()
        deadline = time.monotonic() + timeout
        while not self.stopping and time.monotonic() < deadline:
            began = time.monotonic()
            responses = client.idle_check(timeout=IDLE_CHECK)
            bye = next((r for r in responses if r and r[0] == b"BYE"), None)
            if bye:
                raise ConnectionLost(b" ".join(x for x in bye if isinstance(x, bytes)).decode(errors="replace"))
            if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                break
            if not responses and time.monotonic() - began < IDLE_CHECK / 2:
                break  # readable yet nothing to read: EOF; idle_done() below raises
        client.idle_done()
