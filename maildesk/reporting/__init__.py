"""Support reports: rows read from the database (:mod:`.rows`), metrics computed from them
by pure functions (:mod:`.metrics`, the one place each figure is defined; docs/reports.md),
and the forms they are shown in (:mod:`.render` for text/json/csv, :mod:`.html` for the
self-contained HTML report with matplotlib charts)."""

from maildesk.reporting.metrics import build_report
from maildesk.reporting.rows import Dataset, load_dataset

__all__ = ["Dataset", "build_report", "load_dataset"]
