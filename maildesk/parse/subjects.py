"""Subjects: reply/forward prefixes in many languages, and the ``[MD-1042]`` ticket reference."""

from __future__ import annotations

import re

__all__ = ["base_subject", "find_refs", "format_ref", "reply_subject"]

# Reply and forward prefixes as mail clients write them, in the languages users write in.
_PREFIXES = (
    "re", "fw", "fwd", "aw", "wg", "sv", "vs", "antw", "odp", "pd", "tr", "rv", "enc", "res",
    "r", "i", "ynt", "vb", "vl", "bls", "atb", "rif", "doorst", "továbbítás", "vá", "ref",
    "ответ", "отв", "пересл", "απ", "σχετ", "πρθ", "השב", "תשובה", "הועבר", "回复", "回覆",
    "转发", "轉寄", "答复", "返信", "転送", "rép", "wtr", "yan", "ilt",
)
_PREFIX = re.compile(
    r"^\s*(?:(?:" + "|".join(sorted({re.escape(p) for p in _PREFIXES}, key=len, reverse=True))
    + r")(?:\s*\[\d+\]|\s*\(\d+\))?\s*[:：])\s*",
    re.IGNORECASE,
)


def format_ref(prefix: str, number: int) -> str:
    return f"{prefix}-{number}"


def find_refs(subject: str, prefix: str) -> list[int]:
    """Ticket numbers referenced as ``[PREFIX-123]`` (or ``PREFIX-123``/``#PREFIX-123``)."""
    pattern = re.compile(rf"(?<![A-Za-z0-9])\[?#?{re.escape(prefix)}[-#]?(\d{{1,18}})\]?(?![A-Za-z0-9])", re.IGNORECASE)
    return [int(n) for n in pattern.findall(subject or "")]


# What the shipped templates write after the reference in a customer's subject
# ("[MD-14] Closed: Printer"): dropped with the reference, never elsewhere.
_OUR_WORDS = ("Closed", "Resolved", "Waiting for your answer", "Your mail was not applied")
_OUR_WORDS_RE = "|".join([*(re.escape(w) for w in _OUR_WORDS), r"Merged into [^\s:]+"])


def base_subject(subject: str, prefix: str | None = None) -> str:
    """The subject without reply/forward prefixes and (if ``prefix``) without our references
    and the status words our mails put right after them ("[MD-14] Closed: ")."""
    text = subject or ""
    if prefix:
        text = re.sub(rf"\s*\[{re.escape(prefix)}-\d+\]\s*(?:(?:{_OUR_WORDS_RE})\s*[:：]\s*)?", " ", text, flags=re.IGNORECASE)
    previous = None
    while previous != text:
        previous = text
        text = _PREFIX.sub("", text, count=1)
    return re.sub(r"\s+", " ", text).strip()


def reply_subject(subject: str, prefix: str, number: int) -> str:
    """``[MD-1042] Re: <subject without piled-up prefixes>``."""
    base = base_subject(subject, prefix) or "(no subject)"
    return f"[{format_ref(prefix, number)}] Re: {base}"
