"""Support reports: rows read from the database (:mod:`.rows`), metrics computed from them
by pure functions (:mod:`.metrics`, the one place each figure is defined; docs/reports.md),
and the forms they are shown in (:mod:`.render` for text/json/csv, :mod:`.html` for the
self-contained HTML report with matplotlib charts).

::

    rows.py     the plain rows a report reads, queried once (the only module that touches the database)
    metrics.py  every figure, defined once, as pure functions over the rows
    render.py   the report as text, JSON and CSV
    html.py     the self-contained HTML report
    charts.py   the HTML report's charts as PNG (matplotlib, Agg)
    weekly.py   the weekly digest mailed to each team's lead
"""

from maildesk.reporting.metrics import build_report
from maildesk.reporting.rows import Dataset, load_dataset

__all__ = ["Dataset", "build_report", "load_dataset"]
