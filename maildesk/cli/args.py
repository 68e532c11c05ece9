"""Argument conventions shared by every subcommand: a usage error is one line and exit 64,
numbers that must be positive, times that must carry a time zone, and which commands
only read (those create nothing)."""

from __future__ import annotations

import argparse
from datetime import datetime

from maildesk.errors import EX_USAGE

__all__ = ["Parser", "aware_time", "positive", "read_only"]

_READ_ONLY = {"tickets", "report", "rules", "imap", "events", "status"}  # every subcommand of these only reads
_READ_ONLY_SUB = {"list", "show", "status"}  # inbox list, outbox list/show, jobs list, db status


class Parser(argparse.ArgumentParser):
    """argparse with one line for a usage error and exit 64 (EX_USAGE); subcommands inherit it."""

    def error(self, message: str):
        self.exit(EX_USAGE, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def positive(kind=int):
    """An argparse type: a number above zero."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {'whole ' if kind is int else ''}number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def aware_time(text: str) -> datetime:
    """An argparse type: an ISO 8601 time with its time zone (a time without one is ambiguous)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time like 2026-11-24T09:30:00+01:00, got {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add one, e.g. 2026-11-24T09:30:00+01:00 or 2026-11-24T08:30:00Z")
    return value


def read_only(args: argparse.Namespace) -> bool:
    """Does this command only read? Then it creates nothing: no database, no secret file."""
    return args.command in _READ_ONLY or getattr(args, f"{args.command}_command", None) in _READ_ONLY_SUB
