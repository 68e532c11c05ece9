"""What the commands share: the database of a command, output as a table or JSON, and
the checks of an ID-or-``--all`` argument and of a row that must have failed."""

from __future__ import annotations

import argparse
import json
import sys

from maildesk.cli.args import read_only
from maildesk.config.load import Config
from maildesk.errors import DataError, NotFound, UsageError

__all__ = ["emit", "one_or_all", "open_db", "require_failed"]


def open_db(config: Config, args: argparse.Namespace):
    """The store of an existing, up-to-date database; read-only commands take no write lock."""
    from maildesk.storage.store import existing_store

    return existing_store(config, writes=not read_only(args))


def emit(data, as_json: bool, human) -> None:
    if as_json:
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(human(data))


def one_or_all(args, command: str) -> None:
    if args.id is None and not args.all:
        raise UsageError(f"{command} needs an ID or --all")
    if args.id is not None and args.all:
        raise UsageError(f"{command}: give an ID or --all, not both")


def require_failed(row, what: str, listing: str, noun: str) -> None:
    """Only failed rows are retried: anything else named by ID is an error that says why."""
    if row is None:
        raise NotFound(f"no {what}; `maildesk {listing}` shows the IDs")
    if row.status != "failed":
        raise DataError(f"{what} is {row.status}, not failed; only a failed {noun} is retried")
