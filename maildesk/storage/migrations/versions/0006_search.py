"""search: full-text indexes over message text, ticket subjects and requester names

SQLite: FTS5 tables (search_messages, search_tickets) filled by triggers on messages,
tickets and contacts, so every transaction that stores a message also indexes it and the
writers need no change. PostgreSQL: GIN expression indexes over to_tsvector('simple', ...),
which the database keeps in step by itself. The 'simple' configuration lowercases and
splits on non-letters with no stemming, in any script (Cyrillic, Greek, ...), so a word
matches as written whatever the mail's language. Queries: maildesk/tickets/search.py.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:00:00
"""

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

SQLITE = [
    "CREATE VIRTUAL TABLE search_messages USING fts5(body, ticket_id UNINDEXED, public UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE search_tickets USING fts5(subject, requester, tokenize = 'unicode61 remove_diacritics 2')",
    """CREATE TRIGGER search_messages_ai AFTER INSERT ON messages BEGIN
         INSERT INTO search_messages (rowid, body, ticket_id, public)
         VALUES (new.id, coalesce(new.subject, '') || ' ' || coalesce(new.text, ''), new.ticket_id, new.direction != 'int');
       END""",
    """CREATE TRIGGER search_messages_au AFTER UPDATE OF subject, text, ticket_id, direction ON messages BEGIN
         DELETE FROM search_messages WHERE rowid = old.id;
         INSERT INTO search_messages (rowid, body, ticket_id, public)
         VALUES (new.id, coalesce(new.subject, '') || ' ' || coalesce(new.text, ''), new.ticket_id, new.direction != 'int');
       END""",
    "CREATE TRIGGER search_messages_ad AFTER DELETE ON messages BEGIN DELETE FROM search_messages WHERE rowid = old.id; END",
    """CREATE TRIGGER search_tickets_ai AFTER INSERT ON tickets BEGIN
         INSERT INTO search_tickets (rowid, subject, requester)
         VALUES (new.id, coalesce(new.subject, ''), coalesce((SELECT name FROM contacts WHERE id = new.requester_id), ''));
       END""",
    """CREATE TRIGGER search_tickets_au AFTER UPDATE OF subject, requester_id ON tickets BEGIN
         DELETE FROM search_tickets WHERE rowid = old.id;
         INSERT INTO search_tickets (rowid, subject, requester)
         VALUES (new.id, coalesce(new.subject, ''), coalesce((SELECT name FROM contacts WHERE id = new.requester_id), ''));
       END""",
    "CREATE TRIGGER search_tickets_ad AFTER DELETE ON tickets BEGIN DELETE FROM search_tickets WHERE rowid = old.id; END",
    """CREATE TRIGGER search_contacts_au AFTER UPDATE OF name ON contacts BEGIN
         UPDATE search_tickets SET requester = coalesce(new.name, '') WHERE rowid IN (SELECT id FROM tickets WHERE requester_id = new.id);
       END""",
    # what is already stored
    "INSERT INTO search_messages (rowid, body, ticket_id, public) "
    "SELECT id, coalesce(subject, '') || ' ' || coalesce(text, ''), ticket_id, direction != 'int' FROM messages",
    "INSERT INTO search_tickets (rowid, subject, requester) "
    "SELECT t.id, coalesce(t.subject, ''), coalesce(c.name, '') FROM tickets t LEFT JOIN contacts c ON c.id = t.requester_id",
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS search_contacts_au"] + [f"DROP TRIGGER IF EXISTS search_{t}_{w}" for t in ("messages", "tickets")
                                                                for w in ("ai", "au", "ad")] + [
    "DROP TABLE IF EXISTS search_messages", "DROP TABLE IF EXISTS search_tickets"]

POSTGRES = [
    "CREATE INDEX search_messages_body ON messages USING gin (to_tsvector('simple'::regconfig, coalesce(subject, '') || ' ' || coalesce(text, '')))",
    "CREATE INDEX search_tickets_subject ON tickets USING gin (to_tsvector('simple'::regconfig, coalesce(subject, '')))",
    "CREATE INDEX search_contacts_name ON contacts USING gin (to_tsvector('simple'::regconfig, coalesce(name, '')))",
]
POSTGRES_DOWN = ["DROP INDEX IF EXISTS search_messages_body", "DROP INDEX IF EXISTS search_tickets_subject", "DROP INDEX IF EXISTS search_contacts_name"]


def upgrade() -> None:
    for sql in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRES:
        op.execute(sql)


def downgrade() -> None:
    for sql in SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else POSTGRES_DOWN:
        op.execute(sql)
