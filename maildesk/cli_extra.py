"""Subcommands of the configuration-driven layers (rules, imap, jobs), registered here."""

from __future__ import annotations

import argparse

from maildesk.config import Config

__all__ = ["add_commands", "dispatch"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register extra subcommands (none yet)."""


def dispatch(args: argparse.Namespace, config: Config) -> int:
    raise SystemExit(f"maildesk: unknown command {args.command}")
