"""The report's charts as PNG bytes, drawn server-side by matplotlib (``Figure`` objects
on the Agg canvas: no pyplot global state, no display). PNG rather than SVG because mail
clients (Gmail, Outlook) show embedded PNGs but not SVG; the same bytes go into the HTML
report (data: URIs) and the weekly digest (cid: parts)."""

from __future__ import annotations

import io
import itertools

__all__ = ["CHARTS", "render_charts"]

CHARTS = (("volume", "Tickets created per day"), ("times", "First response and resolution time (calendar hours)"),
          ("sla", "SLA compliance per week (targets met / breached / running)"), ("backlog", "Backlog by age"),
          ("satisfaction", "Satisfaction per week"), ("agents", "Agent load"))
BLUE, GREEN, RED, GREY, ORANGE = "#3b6ea8", "#4c9a55", "#c0392b", "#b0b0b0", "#e08e2b"


def _figure(height: float = 3.0):
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, height), dpi=100)
    fig.set_layout_engine("tight")
    ax = fig.add_subplot()
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of tickets
    return fig, ax


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _empty(ax, text: str = "no data in this period") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def _volume(r: dict) -> bytes:
    fig, ax = _figure()
    days = r["volume"]["by_day"]
    ax.bar([d[5:] for d in days], list(days.values()), color=BLUE)
    ax.set_ylabel("tickets")
    step = max(1, len(days) // 14)
    ax.set_xticks(range(0, len(days), step), [d[5:] for d in list(days)[::step]], rotation=45, ha="right")
    return _png(fig)


def _times(r: dict) -> bytes:
    fig, ax = _figure()
    fr, rs = r["times"]["first_response"]["calendar_hours"], r["times"]["resolution"]["calendar_hours"]
    if not fr and not rs:
        _empty(ax)
    else:
        top = max(fr + rs)
        bins = [0, 1, 2, 4, 8, 24, 48, 96, 168, max(169, top + 1)]
        labels = ["<1h", "1-2h", "2-4h", "4-8h", "8-24h", "1-2d", "2-4d", "4-7d", ">7d"]
        counts = [[sum(1 for h in hs if lo <= h < hi) for lo, hi in itertools.pairwise(bins)] for hs in (fr, rs)]
        x = range(len(labels))
        ax.bar([i - 0.2 for i in x], counts[0], width=0.4, color=BLUE, label="first response")
        ax.bar([i + 0.2 for i in x], counts[1], width=0.4, color=GREEN, label="resolution")
        ax.set_xticks(list(x), labels)
        ax.set_ylabel("tickets")
        ax.legend()
    return _png(fig)


def _sla(r: dict) -> bytes:
    fig, ax = _figure()
    weeks = r["sla"].get("by_week", {})
    if not weeks:
        _empty(ax, "no SLA data (no config/sla.toml, or no tickets)")
    else:
        names = [f"week of {w[5:]}" for w in weeks]
        met = [c["met"] for c in weeks.values()]
        br = [c["breached"] for c in weeks.values()]
        run = [c["running"] for c in weeks.values()]
        ax.bar(names, met, color=GREEN, label="met")
        ax.bar(names, br, bottom=met, color=RED, label="breached")
        ax.bar(names, run, bottom=[a + b for a, b in zip(met, br, strict=True)], color=GREY, label="running")
        ax.set_ylabel("targets")
        ax.legend()
    return _png(fig)


def _backlog(r: dict) -> bytes:
    fig, ax = _figure(2.6)
    ages = r["backlog"]["by_age"]
    ax.bar(list(ages), list(ages.values()), color=ORANGE)
    ax.set_ylabel("open tickets")
    return _png(fig)


def _satisfaction(r: dict) -> bytes:
    fig, ax = _figure(2.6)
    weeks = r["satisfaction"]["by_week"]
    if not weeks:
        _empty(ax, "no ratings in this period")
    else:
        names = [f"week of {w[5:]}" for w in weeks]
        ax.plot(names, [w["average"] for w in weeks.values()], marker="o", color=BLUE)
        ax.set_ylim(1, 5.4)
        ax.set_ylabel("average score (1-5)")
        for name, w in zip(names, weeks.values(), strict=True):
            ax.annotate(f"n={w['responses']}", (name, w["average"]), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    return _png(fig)


def _agents(r: dict) -> bytes:
    agents = r["agents"]
    fig, ax = _figure(max(2.2, 0.45 * len(agents) + 1))
    if not agents:
        _empty(ax, "no agent activity")
    else:
        names = list(agents)
        y = range(len(names))
        ax.barh([i - 0.2 for i in y], [a["open_load"] for a in agents.values()], height=0.4, color=ORANGE, label="open tickets")
        ax.barh([i + 0.2 for i in y], [a["tickets_handled"] for a in agents.values()], height=0.4, color=BLUE, label="tickets handled")
        ax.set_yticks(list(y), names)
        ax.invert_yaxis()
        ax.legend()
    return _png(fig)


_DRAW = {"volume": _volume, "times": _times, "sla": _sla, "backlog": _backlog, "satisfaction": _satisfaction, "agents": _agents}


def render_charts(r: dict) -> dict[str, bytes]:
    """Chart name -> PNG bytes, in the order of :data:`CHARTS`."""
    return {name: _DRAW[name](r) for name, _ in CHARTS}
