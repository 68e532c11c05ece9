"""Best-effort line numbers in TOML text, for the errors that name a file, key and line.

:mod:`tomllib` gives a line only for syntax errors; for a valid file that holds a wrong
value, :class:`TomlLocator` finds where a key is written. One locator serves every file
maildesk reads: maildesk.toml (:meth:`TomlLocator.section_line`), agents.toml and
rules.toml (:meth:`~TomlLocator.block`, :meth:`~TomlLocator.key_line`) and sla.toml
(:meth:`~TomlLocator.path_line`). :func:`toml_error` turns a syntax error into a
:class:`ConfigError`.
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property

from maildesk.errors import ConfigError

__all__ = ["TomlLocator", "decode_error_line", "toml_error"]

_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def decode_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    """The line of a TOML syntax error (``lineno`` where Python has it, else from the message)."""
    found = re.search(r"at line (\d+)", str(exc))
    return getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)


def toml_error(file: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    """A TOML syntax error as a ConfigError with its line (tomllib puts it in the message)."""
    text = str(exc)
    m = _AT_LINE.search(text)
    line = getattr(exc, "lineno", None) or (int(m.group(1)) if m else None)
    where = f" (column {m.group(2)})" if m else ""
    return ConfigError(file, "", f"not valid TOML: {text[: m.start()] if m else text}{where}", line)


class TomlLocator:
    """Best-effort line numbers in a TOML text (tomllib gives none for valid files). Lines count from 1."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
    _DOTTED_HEADER = re.compile(r"\s*(\[\[?)([^\]]+)\]")

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.headers = [(no, m.group(1)) for no, line in enumerate(self.lines, 1) if (m := self._HEADER.match(line))]

    # -- [[table]] blocks (agents.toml, rules.toml) --------------------------------------

    def block(self, table: str, index: int) -> tuple[int, int] | None:
        """(first, last) line of the ``index``-th ``[[table]]`` including its sub-tables."""
        starts = [no for no, name in self.headers if name == table]
        if index >= len(starts):
            return None
        start = starts[index]
        after = [no for no, name in self.headers if no > start and not name.startswith(table + ".")]
        return start, (after[0] - 1 if after else len(self.lines))

    def key_line(self, key: str, span: tuple[int, int] | None = None) -> int | None:
        """The first line in ``span`` (default: before any table) where ``key =`` is written."""
        if span is None:
            span = (1, self.headers[0][0] - 1 if self.headers else len(self.lines))
        pattern = re.compile(rf"(?:^|[{{,\s])[\"']?{re.escape(key)}[\"']?\s*=")
        for no in range(span[0], span[1] + 1):
            line = self.lines[no - 1]
            if not line.lstrip().startswith("#") and pattern.search(line):
                return no
        return None

    def header_line(self, table: str, index: int = 0) -> int | None:
        span = self.block(table, index)
        return span[0] if span else None

    # -- [section] key (maildesk.toml) ---------------------------------------------------

    def section_line(self, section: str, key: str | None) -> int | None:
        """The line of ``key`` in the first ``[section]`` (its header when ``key`` is None);
        ``imap.1`` looks in ``[imap]``: only the part before the first dot counts."""
        head = section.split(".")[0]
        in_section = False
        for no, line in enumerate(self.lines, 1):
            stripped = line.strip()
            if stripped.startswith("["):
                in_section = stripped.strip("[]").strip() == head
                if key is None and in_section:
                    return no
                continue
            if in_section and key and re.match(rf"{re.escape(key)}\s*=", stripped):
                return no
        return None

    # -- dotted paths (sla.toml) ---------------------------------------------------------

    @cached_property
    def dotted_headers(self) -> list[tuple[int, str, bool]]:
        """(line index from 0, dotted name with quotes and spaces removed, is an array table) of every header."""
        out = []
        for i, line in enumerate(self.lines):
            m = self._DOTTED_HEADER.match(line)
            if m:
                out.append((i, ".".join(p.strip().strip("\"'") for p in m.group(2).split(".")), m.group(1) == "[["))
        return out

    def path_line(self, path: tuple[str, ...], key: str | None, nth: int = 0) -> int | None:
        """The line of ``key`` under the table ``path`` (``nth``: which ``[[path]]``), written as
        a header, a key in that table, or a dotted key in a parent table."""
        headers = self.dotted_headers
        full = ".".join((*path, key) if key else path)
        if key and (h := next((h for h in headers if h[1] == full or h[1].startswith(full + ".")), None)):
            return h[0] + 1  # the key is itself a table: [policy.x.first_response]
        for k in range(len(path), -1, -1):
            name = ".".join(path[:k])
            heads = [h for h in headers if h[1] == name]
            if k == 0:
                pos, stop = -1, (headers[0][0] if headers else len(self.lines))
            elif len(heads) > (nth if k == len(path) else 0):
                pos = heads[nth if k == len(path) else 0][0]
                stop = next((h[0] for h in headers if h[0] > pos), len(self.lines))
            else:
                continue
            for part in [*path[k:], *([key] if key else [])]:
                rx = re.compile(rf"(^|[{{,.\s])[\"']?{re.escape(part)}[\"']?\s*[=.]")
                hit = next((i for i in range(pos + 1, stop) if rx.search(self.lines[i].split("#")[0])), None)
                if hit is None:
                    break
                pos = hit
            return pos + 1 if pos >= 0 else None
        return None
