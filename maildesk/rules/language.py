"""Which language a message is written in, for the ``language`` condition.

Detection uses langdetect (a pure-Python port of Google's language-detection) on the
subject and the start of the body, with a fixed seed so the same text always gives the
same answer. Its profiles load once, on the first message that needs them (~0.4 s).
Short or empty texts fall back to the ``Content-Language`` header.
"""

from __future__ import annotations

import re
from functools import cache

__all__ = ["MAX_CHARS", "detect_language", "warm_up"]

MAX_CHARS = 1000  # enough for a reliable answer; detection time grows with the text
_MIN_LETTERS = 12
_QUOTED = re.compile(r"^\s*>.*$", re.M)
_LETTER = re.compile(r"[^\W\d_]")


@cache
def _factory():
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return factory


def warm_up() -> None:
    """Load the language profiles now (~0.4 s) instead of on the first message that needs them."""
    _factory()


def detect_language(subject: str, text: str, content_language: str = "") -> str | None:
    """An ISO 639-1 code ("en", "de", "zh-cn"...) or None when it cannot be told.

    Quoted lines (``> ...``) are skipped, so a German reply quoting English mail is German.
    """
    from langdetect.lang_detect_exception import LangDetectException

    sample = f"{subject}\n{_QUOTED.sub('', text[: MAX_CHARS * 4])}"[:MAX_CHARS]
    if len(_LETTER.findall(sample)) >= _MIN_LETTERS:
        detector = _factory().create()
        detector.set_max_text_length(MAX_CHARS)
        detector.append(sample)
        try:
            return detector.detect().lower()
        except LangDetectException:
            pass
    header = content_language.split(",")[0].strip().lower()
    return header.split("-")[0] or None
