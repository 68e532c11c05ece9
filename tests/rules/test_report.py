"""Output of `maildesk rules check` and `maildesk rules test`."""

from __future__ import annotations

import json

from maildesk.errors import ConfigError
from maildesk.rules import RuleContext, evaluate
from maildesk.rules.report import decision_json, format_check, format_test
from tests.rules.helpers import MONDAY_10_BERLIN, directory, mail, ruleset

D = directory()
RULES = """
[[rule]]
name = "bulk"
when = { header = { name = "List-Id", exists = true } }
then = { spam = true }
stop = true

[[rule]]
name = "support"
when = { recipient = "support@example.test", any = [ { subject_words = ["account"] }, { vip = true } ] }
then = { team = "tier1", priority = "high", tags = ["acct"] }
stop = true

[[rule]]
name = "replies"
on = "reply"
then = { tags = ["re"] }

[[rule]]
name = "off"
enabled = false
then = { tags = ["off"] }

[[rule]]
name = "after-stop"
then = { tags = ["late"] }
"""


def test_format_check():
    assert format_check([]) == "OK: no problems found."
    problems = [ConfigError("config/rules.toml", '[[rule]] #2 "x" then.team', "expected a team", 7),
                ConfigError("config/agents.toml", "vip", "not a domain", None)]
    assert format_check(problems) == (
        'config/rules.toml:7: [[rule]] #2 "x" then.team: expected a team\n'
        "config/agents.toml: vip: not a domain\n"
        "2 problems found."
    )


def test_format_test_lists_every_rule_with_its_fate_and_the_decision():
    rs = ruleset(RULES, D)
    d = evaluate(rs, mail(), RuleContext(directory=D, last_assigned={"tier1": "bob"}), MONDAY_10_BERLIN)
    text = format_test(d, rs)
    assert text.splitlines()[0] == "Rules from rules.toml, evaluated for a new ticket:"
    assert "#1 bulk: no match\n      no   header {name = \"List-Id\", exists = true} [list-id: absent]" in text
    assert "#2 support: MATCHED (stop = true: later rules are not evaluated)" in text
    assert '      yes  sent to "support@example.test" [support@example.test]' in text
    assert "        yes  subject has any of the words \"account\" [account]" in text
    assert '#3 replies: skipped (on = "reply": replies only)' in text
    assert "#4 off: skipped (enabled = false)" in text
    assert "#5 after-stop: not evaluated (rule 'support' stopped the run)" in text
    assert "  priority     high   (rule 'support')" in text
    assert "  assignee     carol [round_robin]: round robin in team tier1: next after bob is carol" in text
    assert "  tags         acct" in text
    assert "  acknowledge  yes, default template" in text


def test_format_test_for_spam_and_replies():
    rs = ruleset(RULES, D)
    d = evaluate(rs, mail(headers={"List-Id": "<news.example.org>"}), RuleContext(directory=D), MONDAY_10_BERLIN)
    text = format_test(d, rs)
    assert "spam         yes: kept, not acknowledged, not assigned   (rule 'bulk')" in text
    assert "acknowledge  no (spam is never acknowledged)" in text
    reply = evaluate(rs, mail(subject="Re: hi"), RuleContext(directory=D), MONDAY_10_BERLIN, is_reply=True)
    text = format_test(reply, rs)
    assert "evaluated for a reply to an existing ticket" in text
    assert '#1 bulk: skipped (on = "new": new tickets only)' in text and "#3 replies: MATCHED" in text


def test_decision_json_is_json_serialisable_and_complete():
    rs = ruleset(RULES, D)
    d = evaluate(rs, mail(), RuleContext(directory=D), MONDAY_10_BERLIN)
    data = json.loads(json.dumps(decision_json(d)))
    assert data["matched"] == ["support"] and data["team"] == "tier1" and data["tags"] == ["acct"]
    assert data["set_by"] == {"team": "support", "priority": "support", "assignee": "team tier1 default"}
    assert data["round_robin"] == ["tier1", "bob"] and data["assignee"] == "bob"
    assert data["hits"][1]["reasons"][0].startswith("yes  sent to")
    assert {"ack", "ack_template", "spam", "status", "sla_policy", "notify", "stopped_by", "is_reply"} <= set(data)
