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

__all__ = ["REPLY_MARKER", "html_without_quotes", "new_text", "reply_text"]

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


# Containers mail clients put quoted history in. The attribution line and everything after
# an Outlook reply header belong to the history too.
_QUOTES = ("//blockquote", "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]",
           "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_extra ')]",
           "//*[contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')]",
           "//*[contains(concat(' ', normalize-space(@class), ' '), ' yahoo_quoted ')]",
           "//*[@id='mail-editor-reference-message-container']")
_HISTORY_STARTS = ("//*[@id='divRplyFwdMsg']", "//*[@id='appendonsend']", "//hr[@id='stopSpelling']")


def html_without_quotes(html: str) -> str | None:
    """The text of an HTML reply without its quoted history (None when the HTML does not parse):
    a quote carries no ``#command`` and is never relayed to the customer."""
    import lxml.html
    from inscriptis import get_text

    try:
        root = lxml.html.document_fromstring(html)
    except Exception:  # lxml on hostile or empty HTML
        return None
    for start in _HISTORY_STARTS:
        for node in root.xpath(start):
            for later in list(node.itersiblings()):
                later.drop_tree()
            node.drop_tree()
    for path in _QUOTES:
        for node in root.xpath(path):
            if node.getparent() is not None:
                node.drop_tree()
    return get_text(lxml.html.tostring(root, encoding="unicode")).strip()


def reply_text(msg) -> str:
    """The new text of a reply (:func:`new_text`); for HTML-only mail, made from the HTML
    without its quoted containers, which plain-text heuristics cannot see once the HTML is text."""
    text = msg.text
    if msg.text_from_html and msg.html:
        stripped = html_without_quotes(msg.html)
        text = stripped if stripped is not None else ""
    return new_text(text)


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
