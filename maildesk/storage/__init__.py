"""Where everything is kept: engine and sessions, the schema, migrations, the writer.

::

    store.py       engine, session factory, transactions, ``db upgrade`` (Alembic)
    models/        the SQLAlchemy schema, one module per group of tables
    migrations/    Alembic revisions
    writer.py      the writer ticket code writes through (immediate; the base of batch)
    batch.py       group commit: the writes of many messages in one go
    loads.py       open tickets per agent, for assignment
    writerlock.py  SQLite's one writer across processes (flock)
    rawblob.py     large values written and read in pieces on SQLite
    vacuum.py      ``maildesk db vacuum``
"""
