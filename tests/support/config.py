"""Writing test configuration files (``maildesk.toml`` and the files of its config/ directory)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["ROOT", "write_config"]

ROOT = Path(__file__).resolve().parents[2]  # the repository: the daemon runs with it on PYTHONPATH


def write_config(directory: Path, *, port: int, smarthost: str | None = None, db_url: str | None = None,
                 addresses=("support@example.test", "billing@example.test"), extra: str = "",
                 files: dict[str, str] | None = None, shipped_config: bool = False, smtp: dict | None = None,
                 processing: dict | None = None, **mail) -> Path:
    """A maildesk.toml in ``directory``; ``files`` are written into its config/ directory
    (e.g. {"agents.toml": ...}); ``shipped_config`` copies the repository's config/ first;
    ``smtp`` and ``processing`` add keys to those tables (``smtp`` may change ``max_message_size``)."""
    import shutil

    directory.mkdir(parents=True, exist_ok=True)
    if shipped_config:
        shutil.copytree(ROOT / "config", directory / "config", dirs_exist_ok=True)
    for name, text in (files or {}).items():
        (directory / "config").mkdir(exist_ok=True)
        (directory / "config" / name).write_text(text)
    outbound = f'smarthost = "{smarthost}"\nretry_base = 0.5\nretry_max = 2\npoll_interval = 0.2' if smarthost else 'maildir = "var/sent"'
    mail_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in mail.items())
    smtp = {"max_message_size": 2000000, **(smtp or {})}
    smtp_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in smtp.items())
    processing_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in (processing or {}).items())
    text = f"""
[database]
url = "{db_url or 'sqlite:///var/maildesk.db'}"

[smtp]
host = "127.0.0.1"
port = {port}
{smtp_lines}

[mail]
addresses = {json.dumps(list(addresses))}
ticket_prefix = "MD"
support_name = "Example Support"
secret = "test-secret-not-for-production-0123456789"
{mail_lines}

[outbound]
{outbound}

[processing]
poll_interval = 0.2
{processing_lines}

[log]
level = "INFO"
{extra}
"""
    path = directory / "maildesk.toml"
    path.write_text(text)
    return path
