"""Alembic environment: runs on the engine maildesk hands over (never on an ini file URL)."""

from alembic import context

from maildesk.storage import webmodels as _webmodels  # noqa: F401 - its tables are in Base.metadata too
from maildesk.storage.models import Base, UTCDateTime


def render_item(type_, obj, autogen_context):
    """Migrations spell plain SQL types, so they never depend on maildesk's Python types."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def include_name(name, type_, parent_names):
    """The full-text search tables (SQLite FTS5) and indexes (PostgreSQL GIN expressions) of
    migration 0005 are not models: autogenerate leaves them alone."""
    return not (name or "").startswith("search_")


config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
