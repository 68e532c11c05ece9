"""``maildesk rules check`` and ``maildesk rules test MESSAGE.eml``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from maildesk.config.load import Config
from maildesk.errors import NotFound

__all__ = ["COMMANDS", "add_commands"]


def add_commands(sub) -> None:
    rules = sub.add_parser("rules", help="check the config files, test rules on a message").add_subparsers(
        dest="rules_command", required=True)
    rules.add_parser("check", help="validate agents.toml, rules.toml and sla.toml; every problem at once")
    test = rules.add_parser("test", help="show what the rules would do with a saved message (changes nothing)")
    test.add_argument("message", help="a raw message file (.eml); - for standard input")
    test.add_argument("--reply", action="store_true", help="evaluate as a reply to an existing ticket")
    test.add_argument("--json", action="store_true")


def cmd_rules(args, config: Config) -> int:
    from maildesk.outgoing.render import Renderer
    from maildesk.policy.files import check_all
    from maildesk.rules.report import format_check

    renderer = Renderer(config.config_dir / "templates")
    problems = check_all(config.config_dir, renderer.names())
    if args.rules_command == "check":
        print(format_check(problems), file=sys.stdout if not problems else sys.stderr)
        return 1 if problems else 0
    if problems:
        print(format_check(problems), file=sys.stderr)
        return 1
    return _test(args, config, renderer)


def _test(args, config: Config, renderer) -> int:
    from sqlalchemy import select

    from maildesk.daemon.build import utcnow
    from maildesk.parse.message import parse
    from maildesk.policy.files import PolicyFiles
    from maildesk.process.decisions import rule_context
    from maildesk.rules import evaluate
    from maildesk.rules.report import decision_json, format_test
    from maildesk.storage.models import Contact
    from maildesk.storage.store import store_for

    try:
        raw = sys.stdin.buffer.read() if args.message == "-" else Path(args.message).read_bytes()
    except OSError as exc:
        raise NotFound(f"cannot read {args.message}: {exc.strerror}; give the path of a saved message (.eml), or - for "
                       "standard input") from exc
    msg = parse(raw, rcpt_to=(config.mail.primary,), max_depth=config.mail.max_mime_depth,
                max_addresses=config.mail.max_addresses_per_mail)
    policy = PolicyFiles(config.config_dir, renderer.names())
    desk_view = _View(policy)
    try:
        store = store_for(config, create=False, writes=False)
        with store.read() as session:
            known = session.scalar(select(Contact.id).where(Contact.address == msg.from_addr)) is not None
            ctx = rule_context(session, desk_view, known)
    except Exception:  # no database yet: rules still test, with no load or history
        from maildesk.rules import RuleContext

        ctx = RuleContext(directory=policy.directory)
    decision = evaluate(policy.ruleset, msg, ctx, utcnow(), is_reply=args.reply)
    if args.json:
        json.dump(decision_json(decision), sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        print(format_test(decision, policy.ruleset))
    return 0


class _View:
    """What rule_context reads from a Desk, without building one."""

    def __init__(self, policy):
        self.directory = policy.directory


COMMANDS = {"rules": cmd_rules}
