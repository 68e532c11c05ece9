"""Two instances on one PostgreSQL: only one reads a given IMAP mailbox."""

from __future__ import annotations

from maildesk.ingest.lease import MailboxLease
from maildesk.storage.store import open_store


def test_only_one_holder_and_takeover(pg_url):
    a, b = open_store(pg_url), open_store(pg_url)
    first, second = MailboxLease(a, "support"), MailboxLease(b, "support")
    assert first.acquire() and first.acquire()  # idempotent for the holder
    assert not second.acquire()
    assert MailboxLease(b, "billing").acquire()  # other mailboxes are independent
    first.release()
    assert second.acquire()
    second.release()
    a.dispose()
    b.dispose()


def test_sqlite_always_leases(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    assert MailboxLease(store, "support").acquire() and MailboxLease(store, "support").acquire()
