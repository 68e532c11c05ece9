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


def test_two_desks_in_two_schemas_of_one_database_each_read_their_mailbox(pg_url):
    """Advisory locks are per database: a desk in another schema with a mailbox of the
    same name is another mailbox, and must not be kept waiting."""
    import uuid

    from sqlalchemy import create_engine, text

    from tests.conftest import PG_URL

    other = f"md_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{other}"'))
    sep = "&" if "?" in PG_URL else "?"
    a, b = open_store(pg_url), open_store(f"{PG_URL}{sep}options=-csearch_path%3D{other}")
    try:
        mine, theirs = MailboxLease(a, "support"), MailboxLease(b, "support")
        assert mine.acquire()
        assert theirs.acquire(), "a desk in another schema was kept from its own mailbox"
        mine.release()
        theirs.release()
    finally:
        a.dispose()
        b.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{other}" CASCADE'))
        admin.dispose()
