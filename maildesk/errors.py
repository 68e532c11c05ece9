"""The maildesk error tree.

::

    MaildeskError                  anything maildesk raises on purpose
    ├── ConfigError                a config file is wrong: file, key, what was expected
    ├── StorageError               the database cannot be reached or written
    │   └── SchemaOutOfDate        the database needs `maildesk db upgrade`
    ├── DeliveryError              an outgoing mail could not be handed over
    │   ├── TemporaryDeliveryError retry later (connection refused, 4xx)
    │   └── PermanentDeliveryError give up (5xx)
    └── MessageRejected            a sender-caused refusal (size, recipient); carries an SMTP reply

Foreign exceptions (sqlalchemy, smtplib, OSError) are mapped at the module boundary
with ``raise ... from exc`` so the original cause stays in the traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "MaildeskError",
    "MessageRejected",
    "PermanentDeliveryError",
    "SchemaOutOfDate",
    "StorageError",
    "TemporaryDeliveryError",
]


class MaildeskError(Exception):
    """Base class of every error maildesk raises on purpose."""


class ConfigError(MaildeskError):
    """A configuration problem an operator must fix.

    ``str()`` reads ``file: [table] key: what was expected``.
    """

    def __init__(self, file: str, key: str, hint: str, line: int | None = None):
        self.file, self.key, self.hint, self.line = str(file), key, hint, line
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: {key}: {hint}" if key else f"{where}: {hint}")


class StorageError(MaildeskError):
    """The database could not be reached or written."""


class SchemaOutOfDate(StorageError):
    """The database schema is behind the code."""


class DeliveryError(MaildeskError):
    """An outgoing mail could not be delivered."""


class TemporaryDeliveryError(DeliveryError):
    """Delivery failed in a way that may succeed later."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed for good (the server said 5xx)."""


class MessageRejected(MaildeskError):
    """A sender-caused refusal with its SMTP reply, e.g. ``552 5.3.4 ...``."""

    def __init__(self, reply: str):
        self.reply = reply
        super().__init__(reply)
