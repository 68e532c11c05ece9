"""Knowledge-base articles in config/kb/*.md that answer common questions right away.

Each file has TOML front matter between ``+++`` lines, then the article text::

    +++
    title = "The printer says PC LOAD LETTER"
    keywords = ["pc load letter", "load letter"]
    +++
    Load letter-size paper into tray 1, then press OK.

When a new ticket's subject or body contains one of an article's keywords (case does not
matter), the acknowledgement includes the article: many customers then solve the
problem before an agent has read the ticket. At most three articles are suggested.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from maildesk.errors import ConfigError

__all__ = ["Article", "load_kb", "suggest"]


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    keywords: tuple[str, ...]
    text: str


def load_kb(directory: Path) -> tuple[tuple[Article, ...], list[ConfigError]]:
    articles, problems = [], []
    for path in sorted(Path(directory).glob("*.md")) if Path(directory).is_dir() else []:
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(ConfigError(str(path), "", f"cannot read the article: {exc}"))
            continue
        parts = raw.split("+++", 2)
        if not raw.startswith("+++") or len(parts) < 3:
            problems.append(ConfigError(str(path), "", "expected TOML front matter between '+++' lines at the top", 1))
            continue
        try:
            meta = tomllib.loads(parts[1])
        except tomllib.TOMLDecodeError as exc:
            problems.append(ConfigError(str(path), "", f"front matter is not valid TOML: {exc}", 1))
            continue
        title, keywords = meta.get("title"), meta.get("keywords")
        if not isinstance(title, str) or not title.strip():
            problems.append(ConfigError(str(path), "title", "expected a non-empty string"))
            continue
        if not isinstance(keywords, list) or not keywords or not all(isinstance(k, str) and k.strip() for k in keywords):
            problems.append(ConfigError(str(path), "keywords", "expected a non-empty list of words or phrases"))
            continue
        articles.append(Article(path.stem, title.strip(), tuple(k.strip().lower() for k in keywords), parts[2].strip()))
    return tuple(articles), problems


def suggest(articles: tuple[Article, ...], subject: str, text: str, limit: int = 3) -> list[Article]:
    haystack = f"{subject}\n{text[:20000]}".lower()
    return [a for a in articles if any(k in haystack for k in a.keywords)][:limit]
