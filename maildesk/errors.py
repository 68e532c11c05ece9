"""The maildesk error tree.

::

    MaildeskError                  anything maildesk raises on purpose                     exit 1
    ├── ConfigError                a config file is wrong: file, key, what was expected    78 EX_CONFIG
    ├── UsageError                 a command-line argument is wrong                        64 EX_USAGE
    ├── DataError                  the input, or the thing named, cannot be used as asked  65 EX_DATAERR
    ├── NotFound                   the file, ticket, message or mail named does not exist  66 EX_NOINPUT
    ├── StorageError               the database cannot be reached or written               69 EX_UNAVAILABLE
    │   ├── SchemaOutOfDate        no database yet, or it needs `maildesk db upgrade`      78 EX_CONFIG
    │   └── StorageBusy            the database is locked; try again                       75 EX_TEMPFAIL
    ├── ListenerUnavailable        the SMTP/LMTP listener cannot bind its address          69 EX_UNAVAILABLE
    ├── DeliveryError              an outgoing mail could not be handed over
    │   ├── TemporaryDeliveryError retry later (connection refused, 4xx)
    │   └── PermanentDeliveryError give up (5xx)

Foreign exceptions (sqlalchemy, smtplib, OSError) are mapped at the module boundary
with ``raise ... from exc`` so the original cause stays in the traceback. ``exit_code``
is what the command line exits with (sysexits.h numbers, see :mod:`maildesk.cli.errors`).
"""

from __future__ import annotations

__all__ = [
    "EX_CONFIG",
    "EX_DATAERR",
    "EX_IOERR",
    "EX_NOINPUT",
    "EX_SOFTWARE",
    "EX_TEMPFAIL",
    "EX_UNAVAILABLE",
    "EX_USAGE",
    "ConfigError",
    "DataError",
    "DeliveryError",
    "ListenerUnavailable",
    "MaildeskError",
    "NotFound",
    "PermanentDeliveryError",
    "SchemaOutOfDate",
    "StorageBusy",
    "StorageError",
    "TemporaryDeliveryError",
    "UsageError",
]

# sysexits.h
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_CONFIG = 78


class MaildeskError(Exception):
    """Base class of every error maildesk raises on purpose."""

    exit_code = 1


class ConfigError(MaildeskError):
    """A configuration problem an operator must fix.

    ``str()`` reads ``file: [table] key: what was expected``.
    """

    exit_code = EX_CONFIG

    def __init__(self, file: str, key: str, hint: str, line: int | None = None):
        self.file, self.key, self.hint, self.line = str(file), key, hint, line
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: {key}: {hint}" if key else f"{where}: {hint}")


class UsageError(MaildeskError):
    """A command-line argument is wrong: ``--days -1``, ``--since`` without a time zone."""

    exit_code = EX_USAGE


class DataError(MaildeskError):
    """What was named exists but cannot be used as asked (retrying a mail that did not fail)."""

    exit_code = EX_DATAERR


class NotFound(MaildeskError):
    """The file, ticket, inbox message or outgoing mail named does not exist."""

    exit_code = EX_NOINPUT


class StorageError(MaildeskError):
    """The database could not be reached or written."""

    exit_code = EX_UNAVAILABLE


class SchemaOutOfDate(StorageError):
    """There is no database yet, or its schema is behind the code."""

    exit_code = EX_CONFIG


class StorageBusy(StorageError):
    """The database is locked by another writer for longer than the busy timeout."""

    exit_code = EX_TEMPFAIL


class ListenerUnavailable(MaildeskError):
    """The SMTP/LMTP listener cannot bind its host and port (in use, not permitted)."""

    exit_code = EX_UNAVAILABLE


class DeliveryError(MaildeskError):
    """An outgoing mail could not be delivered."""


class TemporaryDeliveryError(DeliveryError):
    """Delivery failed in a way that may succeed later."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed for good (the server said 5xx)."""
