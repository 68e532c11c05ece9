"""Subcommands of the optional layers, each in its own module (rules, imap, jobs, events).

A module listed in :data:`MODULES` provides ``add_commands(subparsers)`` and a
``COMMANDS`` dict mapping its top-level command name to ``handler(args, config) -> int``.
"""

from __future__ import annotations

import argparse
import importlib

from maildesk.config.load import Config

__all__ = ["MODULES", "add_commands", "dispatch"]

MODULES = ("maildesk.cli.rules", "maildesk.cli.imap", "maildesk.cli.jobs", "maildesk.cli.events", "maildesk.cli.status",
           "maildesk.cli.people", "maildesk.cli.notices")


def _modules():
    for name in MODULES:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def add_commands(sub: argparse._SubParsersAction) -> None:
    for module in _modules():
        module.add_commands(sub)


def dispatch(args: argparse.Namespace, config: Config) -> int:
    for module in _modules():
        handler = module.COMMANDS.get(args.command)
        if handler is not None:
            return handler(args, config)
    raise SystemExit(f"maildesk: unknown command {args.command}")
