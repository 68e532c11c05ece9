"""The new text of a reply: quoted history and signature removed.

mail-parser-reply finds where the quoted history starts in top-posted replies (Outlook
"From: … Sent: …" blocks, Gmail/Apple "On … wrote:" in many languages). On top of it:
our own "reply above this line" marker in notifications, bottom-posted replies (quoted
``>`` blocks with their attribution line are dropped, the text between them kept), and
the ``-- `` signature delimiter.
"""

from __future__ import annotations

import contextlib
import re
from functools import lru_cache

from mailparser_reply import EmailReplyParser

__all__ = ["REPLY_MARKER", "new_text"]

REPLY_MARKER = "##- Please type your reply above this line -##"
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs", "ru", "ja", "zh")
_ATTRIBUTION = re.compile(r"^(on .{3,200}wrote:|am .{3,200}schrieb .{1,200}:|le .{3,200}a écrit ?:|el .{3,200}escribió:|"
                          r".{3,200} (wrote|schrieb|écrit|escribió|scrisse|schreef|napisał|skrev|написал\(а\)|написал):)\s*$",
                          re.IGNORECASE)


@lru_cache(maxsize=1)
def _parser() -> EmailReplyParser:
    return EmailReplyParser(languages=list(LANGUAGES))


def new_text(text: str) -> str:
    text = (text or "").replace("\r\n", "\n")
    marker = text.find(REPLY_MARKER)
    if marker >= 0:
        text = text[:marker]
    with contextlib.suppress(Exception):  # the library must never cost us the reply itself
        text = _parser().parse_reply(text=text) or text
    return _drop_quotes_and_signature(text).strip()


def _drop_quotes_and_signature(text: str) -> str:
    lines = text.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped in ("--", "-- ") or line == "-- ":
            break
        if stripped.startswith(">"):
            continue
        nxt = next((lines[j].strip() for j in range(i + 1, len(lines)) if lines[j].strip()), "")
        if _ATTRIBUTION.match(stripped) and nxt.startswith(">"):
            continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept))
