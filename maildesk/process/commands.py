"""Agent commands: ``#word args`` lines at the top of an agent's reply (pure parsing).

::

    #status open|pending|resolved|closed     #priority low|normal|high|urgent
    #assign <login>|me                       #team <team>
    #tag <tag>   #untag <tag>                #cc <address>
    #note        (the whole mail is an internal note)
    #close       (= #status closed)          #merge <ref>   (merge this ticket into <ref>)

Commands are read from the first non-empty lines until the first line that is not a
command; the rest is the reply text. :func:`parse_commands` returns the commands, the
remaining text and every problem found; a mail with any problem changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from maildesk.parse.message import normalize_address
from maildesk.vocab import COMMAND_STATUSES, PRIORITIES

__all__ = ["Command", "Parsed", "parse_commands"]

_LINE = re.compile(r"^\s*#([A-Za-z][A-Za-z_-]*)\b[ \t:]*(.*?)\s*$")
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_TAG = re.compile(r"^[\w.:/+-]{1,50}$")
_NAMES = ("status", "priority", "assign", "team", "tag", "untag", "cc", "note", "close", "merge")


@dataclass(frozen=True)
class Command:
    name: str
    arg: str = ""
    line: str = ""


@dataclass
class Parsed:
    commands: list[Command] = field(default_factory=list)
    text: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def is_note(self) -> bool:
        return any(c.name == "note" for c in self.commands)


def parse_commands(text: str, prefix: str) -> Parsed:
    """Split an agent's new text into commands and reply text, checking each command."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    parsed = Parsed()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        m = _LINE.match(line)
        if not m:
            break
        name, arg = m.group(1).lower(), m.group(2).strip()
        problem = _check(name, arg, prefix)
        if problem:
            parsed.errors.append(f"{line.strip()!r}: {problem}")
        else:
            parsed.commands.append(Command(name, _normal(name, arg), line.strip()))
        i += 1
    parsed.text = "\n".join(lines[i:]).strip()
    return parsed


def _normal(name: str, arg: str) -> str:
    if name in ("status", "priority", "assign", "team"):
        return arg.lower()
    if name == "cc":  # stored as incoming mail's addresses are, so the person's replies match
        return normalize_address(arg) or arg.strip("<>").lower()
    return arg


def _check(name: str, arg: str, prefix: str) -> str | None:
    if name not in _NAMES:
        return f"unknown command; known commands: {', '.join('#' + n for n in _NAMES)}"
    if name in ("note", "close"):
        return None if not arg else f"#{name} takes no argument"
    if not arg:
        return f"#{name} needs an argument"
    if name == "status" and arg.lower() not in COMMAND_STATUSES:
        return f"expected one of {', '.join(COMMAND_STATUSES)}"
    if name == "priority" and arg.lower() not in PRIORITIES:
        return f"expected one of {', '.join(PRIORITIES)}"
    if name in ("assign", "team") and not re.fullmatch(r"[\w.-]{1,64}", arg):
        return "expected one login or team name"
    if name in ("tag", "untag") and not _TAG.match(arg):
        return "expected one tag (letters, digits, . _ - : / +; no spaces)"
    if name == "cc" and not _ADDRESS.match(arg.strip("<>")):
        return "expected one mail address"
    if name == "merge" and not re.fullmatch(rf"\[?(?:{re.escape(prefix)}-)?\d+\]?", arg, re.IGNORECASE):
        return f"expected a ticket reference like {prefix}-1042"
    return None
