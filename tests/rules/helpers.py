"""Builders for rule tests: messages written here (via the stdlib), a small directory, rule sets."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from maildesk.parse.message import InboundMessage, parse
from maildesk.policy.agents import Directory, parse_directory, read_directory
from maildesk.rules.schema import RuleSet, parse_rules

__all__ = ["AGENTS", "MONDAY_10_BERLIN", "ROOT", "directory", "mail", "ruleset", "write"]

ROOT = Path(__file__).resolve().parents[2]
MONDAY_10_BERLIN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Berlin (CET)

AGENTS = """
vip = ["bigcorp.example.com", "boss@partner.example.net"]

[[agents]]
login = "alice"
name = "Alice"
address = "alice@example.test"
aliases = ["Alice.Admin@Example.test"]
role = "admin"
teams = ["tier2"]
skills = ["networking", "dns"]

[[agents]]
login = "bob"
name = "Bob"
address = "bob@example.test"
teams = ["tier1"]
skills = ["password"]
capacity = 5

[[agents]]
login = "carol"
name = "Carol"
address = "carol@example.test"
teams = ["tier1", "tier2"]
skills = ["database", "backup"]
capacity = 5

[[agents]]
login = "dave"
name = "Dave"
address = "dave@example.test"
teams = ["billing"]
skills = ["invoice", "refund"]
working_hours = { timezone = "Europe/Berlin", mon-fri = "09:00-17:00" }

[[agents]]
login = "erin"
name = "Erin"
address = "erin@example.test"
teams = ["tier1", "billing"]
available = false

[[teams]]
name = "tier1"
strategy = "round_robin"
hours = { timezone = "Europe/Berlin", mon-fri = "08:00-18:00" }

[[teams]]
name = "tier2"
strategy = "least_loaded"

[[teams]]
name = "billing"
strategy = "skills"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def directory(tmp_path: Path | None = None, text: str = AGENTS) -> Directory:
    """The AGENTS directory (or ``text``), through the real loader (and the file, given ``tmp_path``)."""
    if tmp_path is not None:
        write(tmp_path / "agents.toml", text)
        result, problems = read_directory(tmp_path)
    else:
        result, problems = parse_directory(textwrap.dedent(text))
    assert not problems, [str(p) for p in problems]
    return result


def ruleset(text: str, d: Directory | None = None, **kwargs) -> RuleSet:
    """Rules from TOML text; the test fails on any problem."""
    rs, problems = parse_rules(textwrap.dedent(text), "rules.toml", d or directory(), **kwargs)
    assert not problems, [str(p) for p in problems]
    return rs


def mail(subject: str = "Question about my account", body: str = "Hello, I have a question.\n", *,
         sender: str = "Jo Customer <jo@customer.example.org>", to: str = "support@example.test", cc: str | None = None,
         headers: dict[str, str] | None = None, attachments: tuple[tuple[str, str, bytes], ...] = (),
         charset: str = "utf-8", html: str | None = None, rcpt_to: tuple[str, ...] = (), queue: str | None = None,
         source: str = "smtp", mail_from: str = "") -> InboundMessage:
    """A message built with the stdlib email package and parsed by maildesk.parse.message.parse."""
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    if cc:
        m["Cc"] = cc
    m["Subject"] = subject
    m["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    m["Message-ID"] = "<test-1@customer.example.org>"
    for name, value in (headers or {}).items():
        m[name] = value
    if html is not None and not body:
        m.set_content(html, subtype="html", charset=charset)
    else:
        m.set_content(body, charset=charset)
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    raw = m.as_bytes()
    return parse(raw, rcpt_to=rcpt_to, queue=queue, source=source, mail_from=mail_from)
