"""Text and JSON for ``maildesk rules check`` and ``maildesk rules test``. Pure formatting."""

from __future__ import annotations

from maildesk.errors import ConfigError
from maildesk.rules.engine import Decision
from maildesk.rules.schema import RuleSet

__all__ = ["decision_json", "format_check", "format_test"]


def format_check(problems: list[ConfigError]) -> str:
    """One line per problem (``file:line: key: what was expected``) and a count."""
    if not problems:
        return "OK: no problems found."
    lines = [str(p) for p in problems]
    lines.append(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found.")
    return "\n".join(lines)


def format_test(decision: Decision, ruleset: RuleSet) -> str:
    """Each rule in file order: matched or not and why (or why it was not evaluated), then the decision."""
    hits = {h.rule: h for h in decision.hits}
    kind = "a reply to an existing ticket" if decision.is_reply else "a new ticket"
    out = [f"Rules from {ruleset.path or 'the rules file'}, evaluated for {kind}:", ""]
    for rule in ruleset.rules:
        head = f"#{rule.index} {rule.name}"
        hit = hits.get(rule.name)
        if hit is not None:
            verdict = "MATCHED" + (" (stop = true: later rules are not evaluated)" if rule.stop and hit.matched else "")
            out.append(f"{head}: {verdict if hit.matched else 'no match'}")
            out.extend(f"      {r}" for r in hit.reasons)
        elif not rule.enabled:
            out.append(f"{head}: skipped (enabled = false)")
        elif rule.on != "any" and (rule.on == "reply") != decision.is_reply:
            out.append(f"{head}: skipped (on = \"{rule.on}\": {'new tickets' if rule.on == 'new' else 'replies'} only)")
        else:
            out.append(f"{head}: not evaluated (rule {decision.stopped_by!r} stopped the run)")
    if not ruleset.rules:
        out.append("(no rules)")
    out += ["", "Decision:"]
    names = {r.name for r in ruleset.rules}
    for label, value, action in _rows(decision):
        source = decision.source(action) if action else None
        shown = f"   (rule {source!r})" if source in names else f"   ({source})" if source else ""
        out.append(f"  {label:<12} {value}{shown}")
    return "\n".join(out)


def _rows(d: Decision) -> list[tuple[str, str, str | None]]:
    if d.spam:
        ack = "no (spam is never acknowledged)"
    elif d.ack:
        ack = f"yes, template {d.ack_template!r}" if d.ack_template else "yes, default template"
    else:
        ack = "no"
    assignee = d.assignee or "nobody"
    if d.assign_strategy:
        assignee += f" [{d.assign_strategy}]"
    return [
        ("spam", "yes: kept, not acknowledged, not assigned" if d.spam else "no", "spam"),
        ("priority", d.priority or "(default)", "priority"),
        ("team", d.team or "(none)", "team"),
        ("assignee", f"{assignee}: {d.assign_reason}" if d.assign_reason else assignee, "assignee" if d.assignee else "assign"),
        ("tags", ", ".join(d.tags) or "(none)", None),
        ("acknowledge", ack, "ack"),
        ("status", d.status or "(default)", "status"),
        ("sla", d.sla_policy or "(default)", "sla"),
        ("notify", ", ".join(d.notify) or "(nobody extra)", None),
    ]


def decision_json(decision: Decision) -> dict:
    """The decision as JSON-ready data (``maildesk rules test --json``)."""
    return {
        "is_reply": decision.is_reply,
        "matched": list(decision.matched),
        "stopped_by": decision.stopped_by,
        "priority": decision.priority,
        "team": decision.team,
        "assignee": decision.assignee,
        "assign_strategy": decision.assign_strategy,
        "assign_reason": decision.assign_reason,
        "tags": list(decision.tags),
        "ack": decision.ack,
        "ack_template": decision.ack_template,
        "status": decision.status,
        "sla_policy": decision.sla_policy,
        "notify": list(decision.notify),
        "spam": decision.spam,
        "set_by": dict(decision.set_by),
        "round_robin": list(decision.round_robin) if decision.round_robin else None,
        "hits": [{"rule": h.rule, "index": h.index, "matched": h.matched, "reasons": list(h.reasons)} for h in decision.hits],
    }
