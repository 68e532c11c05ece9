"""The HTML report: one self-contained file (charts as ``data:image/png;base64`` URIs, CSS
inline, no script, nothing fetched), rendered by Jinja2 with autoescaping from
maildesk/templates/report.html.j2. The digest mail reuses it with ``cid:`` image sources."""

from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from maildesk.reporting.charts import CHARTS, render_charts

__all__ = ["data_uris", "render_html"]

_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["hours"] = lambda x: "–" if x is None else f"{x:.1f} h"
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.0f}%"
    return env


def data_uris(charts: dict[str, bytes]) -> dict[str, str]:
    return {name: "data:image/png;base64," + base64.b64encode(png).decode("ascii") for name, png in charts.items()}


def render_html(r: dict, images: dict[str, str] | None = None, *, title: str = "Support report", extra: dict | None = None) -> str:
    """``images`` maps chart name -> src (default: data URIs of freshly drawn charts)."""
    if images is None:
        images = data_uris(render_charts(r))
    return _env().get_template("report.html.j2").render(r=r, charts=[(name, caption, images[name]) for name, caption in CHARTS],
                                                        title=title, extra=extra or {})
