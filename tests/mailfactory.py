"""Moved to :mod:`tests.support.mail`; re-exported here for older imports."""

from tests.support.mail import Part, attachment, encoded_word, encoded_words, forwarded, message, multipart, raw_part, text, tnef

__all__ = ["Part", "attachment", "encoded_word", "encoded_words", "forwarded", "message", "multipart", "raw_part", "text", "tnef"]
