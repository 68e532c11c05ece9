"""Alembic migrations of the schema (``maildesk db upgrade``).

::

    env.py           the Alembic environment: runs on the engine maildesk hands over
    script.py.mako   the template of a new revision
    versions/        the revisions, 0001 onwards (plain SQL types, never maildesk's own)
"""
