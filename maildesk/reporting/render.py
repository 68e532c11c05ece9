"""The report as text (fits an 80-column terminal), JSON and CSV (every figure, one
``section.key,value`` row each). HTML is in :mod:`maildesk.reporting.html`."""

from __future__ import annotations

import csv
import io
import json

__all__ = ["flatten", "to_csv", "to_json", "to_text"]


def to_json(r: dict) -> str:
    return json.dumps(r, ensure_ascii=False, indent=2) + "\n"


def flatten(value, prefix: str = ""):
    """(dotted path, scalar) for every leaf; list items are numbered from 0."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from flatten(v, f"{prefix}.{i}")
    else:
        yield prefix, value


def to_csv(r: dict) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["metric", "value"])
    for path, value in flatten(r):
        w.writerow([path, "" if value is None else value])
    return out.getvalue()


def _h(x) -> str:
    return "-" if x is None else f"{x:.1f} h"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _pairs(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"


def to_text(r: dict) -> str:
    p, v, t, s, b, ro, sat = r["period"], r["volume"], r["times"], r["sla"], r["backlog"], r["reopens"], r["satisfaction"]
    lines = [f"Report {p['since'][:16]} .. {p['until'][:16]}" + (f"  team {p['team']}" if p.get("team") else ""),
             f"  created           {v['created']} (+{v['spam']} spam)",
             f"  per week          {_pairs(v['by_week'])}",
             f"  by team           {_pairs(v['by_team'])}",
             f"  by channel        {_pairs(v['by_channel'])}",
             f"  by priority       {_pairs(v['by_priority'])}"]
    for name, label in (("first_response", "first response"), ("resolution", "resolution")):
        c, bz = t[name]["calendar"], t[name]["business"]
        lines.append(f"  {label:<17} median {_h(c['median_hours'])} (business {_h(bz['median_hours'])}), "
                     f"p90 {_h(c['p90_hours'])} (business {_h(bz['p90_hours'])}), n={c['count']}")
    if s["configured"]:
        for target, c in s["by_target"].items():
            lines.append(f"  SLA {target:<13} met {c['met']}, breached {c['breached']}, running {c['running']} ({_pct(c['met_share'])} met)")
    else:
        lines.append("  SLA               no config/sla.toml")
    lines += [f"  backlog           {b['open']} open; age {_pairs(b['by_age'])}",
              f"                    status {_pairs(b['by_status'])}",
              f"  reopened          {ro['reopened']} of {ro['resolved']} resolved ({_pct(ro['reopen_rate'])})",
              f"  repeat contacts   {ro['repeat_contacts']} within {ro['repeat_days']:g} days ({_pct(ro['repeat_share'])})",
              f"  satisfaction      {sat['responses']} rating(s), average {sat['average'] or '-'}, bad {sat['bad']} ({_pct(sat['bad_share'])}), "
              f"{len(sat['comments'])} comment(s)"]
    if r["agents"]:
        lines.append(f"  {'agent':<16} {'tickets':>7} {'replies':>7} {'1st resp':>9} {'open':>5}")
        for login, a in r["agents"].items():
            lines.append(f"  {login[:16]:<16} {a['tickets_handled']:>7} {a['replies']:>7} {_h(a['median_first_response_hours']):>9} {a['open_load']:>5}")
    return "\n".join(lines)
