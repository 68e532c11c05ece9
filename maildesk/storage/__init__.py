"""Where everything is kept: engine and sessions, the schema, migrations, the writer.

::

    store.py       engine, session factory, transactions, ``db upgrade`` (Alembic)
    models/        the SQLAlchemy schema, one module per group of tables
    migrations/    Alembic revisions
    batch.py       group commit: the writes of many messages in one go
    writerlock.py  SQLite's one writer across processes (flock)
    rawblob.py     large values written and read in pieces on SQLite
    upsert.py      INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL
    vacuum.py      ``maildesk db vacuum``
"""
