"""Freed large blocks go back to the operating system (glibc's malloc), in every maildesk process.

glibc serves a block of at least ``M_MMAP_THRESHOLD`` bytes (128 KiB) with its own
``mmap`` and unmaps it when freed; but the threshold is *dynamic*: once such a block is
freed, the threshold rises to its size (up to 32 MiB) and the heap's trim threshold to
twice that. After the first 25 MB mail every later one is carved from the heap, and up to
64 MB of freed heap stays with the process, per malloc arena (the intake's thread has its
own). Measured, a process that had handled a few 25 MB mails kept 50-100 MB it no longer
used, on top of whatever the next mail needed.

:func:`return_large_blocks` sets the threshold once, at the start of each process, which
also turns the dynamic adjustment off: a block of 1 MiB or more (a raw mail, SQLite's copy
of it, a decoded attachment) is mapped on its own and returned when freed. Small objects
are not affected; what they leave free inside the heap is given back by :func:`trim`
(glibc's ``malloc_trim``), which the intake and the processing step call after handling
:data:`TRIM_AFTER` bytes of mail or more at once (a few milliseconds, once per large mail).
An operator's own ``MALLOC_MMAP_THRESHOLD_`` environment variable (glibc's tunable) wins:
then the threshold is left alone. On a C library other than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

__all__ = ["MMAP_THRESHOLD", "TRIM_AFTER", "return_large_blocks", "trim"]

log = logging.getLogger("maildesk.memtrim")
MMAP_THRESHOLD = 1 << 20  # bytes: blocks this large or larger are mapped on their own
TRIM_AFTER = 4 << 20  # bytes of mail handled at once after which the heap is trimmed
_M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter number


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def return_large_blocks(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; True when it was set."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("GLIBC_TUNABLES", "").find("mmap_threshold") >= 0:
        return False  # the operator chose
    libc = _libc()
    if libc is None:
        return False
    done = bool(libc.mallopt(ctypes.c_int(_M_MMAP_THRESHOLD), ctypes.c_int(threshold)))
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD, %d) refused", threshold)
    return done


def trim() -> bool:
    """glibc's ``malloc_trim(0)``: free heap pages go back to the system now; True if any did."""
    libc = _libc()
    return bool(libc.malloc_trim(ctypes.c_size_t(0))) if libc is not None else False
