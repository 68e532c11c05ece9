"""How a command fails: one line on stderr and a sysexits(3) exit code, never a traceback.

:func:`guarded` runs a command and is the one place where an exception becomes an exit
code. A :class:`~maildesk.errors.MaildeskError` carries its own (``exit_code``, see the
tree in :mod:`maildesk.errors`); :func:`describe` maps what escapes as a foreign
exception: a database error (through :func:`maildesk.storage.store.storage_error`), an address
in use, a file that cannot be read, any other I/O error. Anything else is a bug: one
line saying so (exit 70), and the traceback only with ``MAILDESK_TRACEBACK=1``.

A reader that goes away (``maildesk tickets list | head``) ends the command quietly with
141 (128 + SIGPIPE), as the shell reports for any program whose output was closed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable

from maildesk.errors import (
    EX_IOERR,
    EX_NOINPUT,
    EX_SOFTWARE,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    ConfigError,
    MaildeskError,
)

__all__ = ["EX_PIPE", "TRACEBACK_ENV", "describe", "guarded"]

EX_PIPE = 128 + 13  # SIGPIPE
TRACEBACK_ENV = "MAILDESK_TRACEBACK"
_UNREADABLE = (errno.ENOENT, errno.EACCES, errno.EISDIR, errno.ENOTDIR, errno.EPERM)


def describe(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, the line to print) for an error an operator can act on; None for a bug."""
    if isinstance(exc, ConfigError):
        return exc.exit_code, f"config error: {exc}"
    if isinstance(exc, MaildeskError):
        return exc.exit_code, str(exc)
    if type(exc).__module__ == "sqlalchemy.exc" and hasattr(exc, "orig"):  # a DBAPIError: the driver's own error
        from maildesk.storage.store import storage_error  # SQLAlchemy is loaded already when one of its errors exists

        err = storage_error(exc)
        return err.exit_code, str(err)
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return EX_UNAVAILABLE, f"address already in use ({exc}); is maildesk already running? Stop it or choose another [smtp] port"
        if exc.errno in _UNREADABLE and exc.filename:
            return EX_NOINPUT, f"{exc.filename}: {exc.strerror}"
        return EX_IOERR, f"I/O error: {exc}"
    return None


def guarded(command: Callable[[], int], *, tempfail: bool = False) -> int:
    """Run ``command``; what it raises becomes one line on stderr and an exit code.

    ``tempfail``: every failure exits 75 (EX_TEMPFAIL), for ``maildesk ingest`` run by an
    MTA, which then keeps the message and tries again instead of bouncing it."""
    try:
        code = command()
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's shutdown
        return code
    except BrokenPipeError:
        _discard_stdout()
        return EX_PIPE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        found = describe(exc)
        if found is None:
            if os.environ.get(TRACEBACK_ENV):
                raise
            detail = (str(exc).strip().splitlines() or [""])[0]
            found = EX_SOFTWARE, (f"internal error (a bug in maildesk): {type(exc).__name__}: {detail}; run it again with "
                                  f"{TRACEBACK_ENV}=1 to see where, and report it")
        code, line = found
        _say(line)
        return EX_TEMPFAIL if tempfail else code


def _say(line: str) -> None:
    with contextlib.suppress(OSError):  # stderr is gone too: the exit code is all that is left
        print(f"maildesk: {line}", file=sys.stderr, flush=True)


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
