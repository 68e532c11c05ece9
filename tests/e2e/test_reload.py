"""The running daemon picks up edited rules within seconds; a broken file keeps the old rules."""

from __future__ import annotations

import signal

from tests.support.mail import make_mail, send
from tests.support.servers import wait_until

AGENTS = """
[[agents]]
login = "alice"
name = "Alice"
address = "alice@example.test"
"""
RULE = """
[[rule]]
name = "printer"
when = {{ subject_contains = "printer" }}
then = {{ priority = "{priority}" }}
"""


def _priority_of_new_ticket(d, subject, n):
    send(d.port, make_mail(subject=subject, sender=f"user{n}@customer.test"))
    t = wait_until(lambda: (ts := d.json("tickets", "list")) and len(ts) >= n and ts[0], what=f"ticket {n}")
    return t["priority"]


def test_edit_reload_and_broken_file(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": AGENTS, "rules.toml": RULE.format(priority="high")})
    rules = d.config.parent / "config" / "rules.toml"
    assert _priority_of_new_ticket(d, "printer jammed", 1) == "high"

    rules.write_text(RULE.format(priority="urgent"))  # the admin changes one rule
    wait_until(lambda: "reloaded agents.toml/rules.toml" in d.log.read_text(), what="reload logged")
    assert _priority_of_new_ticket(d, "printer on fire", 2) == "urgent"

    rules.write_text(RULE.format(priority="urgent") + '\n[[rule]]\nname = "bad"\nwhen = { subject_matches = "([" }\n')
    wait_until(lambda: "config not reloaded" in d.log.read_text(), what="refusal logged")
    log = d.log.read_text()
    assert "rules.toml" in log and "bad" in log
    assert _priority_of_new_ticket(d, "printer smoking", 3) == "urgent"  # last good rules still in force

    rules.write_text(RULE.format(priority="low"))
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: d.log.read_text().count("reloaded agents.toml/rules.toml") >= 2, what="second reload")
    assert _priority_of_new_ticket(d, "printer again", 4) == "low"
