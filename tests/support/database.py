"""A migrated SQLite database, made once per test process and copied for each test.

Running the migrations (alembic) costs about half a second in-process and three seconds
as ``maildesk db upgrade`` in a subprocess; a copy of a database already at the head
revision costs a few milliseconds and is the same database. Tests about migrating itself
(``maildesk db upgrade``, file modes of what it creates) keep running it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

__all__ = ["migrated_sqlite", "sqlite_file"]

_template: Path | None = None


def _make_template() -> Path:
    from maildesk.storage.store import open_store

    directory = Path(tempfile.mkdtemp(prefix="maildesk-migrated-"))
    atexit.register(shutil.rmtree, directory, True)
    path = directory / "maildesk.db"
    store = open_store(f"sqlite:///{path}")
    try:
        store.upgrade()
    finally:
        store.dispose()
    conn = sqlite3.connect(path)  # everything into the main file: the copy needs no -wal beside it
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path


def sqlite_file(url: str) -> Path | None:
    """The file of an absolute ``sqlite:///`` URL (as load_config makes them), else None."""
    prefix = "sqlite:///"
    return Path(url[len(prefix):]) if url.startswith(prefix) and "?" not in url else None


def migrated_sqlite(dest: Path) -> Path:
    """Put a database at the head revision at ``dest`` (a new file), as ``maildesk db upgrade``
    would leave it: the directory 0700, the file 0600."""
    global _template
    if _template is None:
        _template = _make_template()
    if dest.exists():
        raise FileExistsError(f"{dest} exists: a copy would replace a database a test made")
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(_template, dest)
    os.chmod(dest, 0o600)
    return dest
