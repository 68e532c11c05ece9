"""`maildesk report` as a subprocess on the hand-built history: every format, the period
and team options, and an HTML file that needs no network (every chart an embedded PNG)."""

from __future__ import annotations

import base64
import csv
import io
import json
from html.parser import HTMLParser

import pytest

from maildesk.storage.store import open_store
from tests.reporting.dataset import store_dataset
from tests.support.config import write_config
from tests.support.servers import MaildeskProcess, free_port

SLA_TOML = """
[select]
default = "standard"
[hours.office]
timezone = "UTC"
mon-fri = "09:00-17:00"
[policy.standard]
hours = "office"
[policy.standard.first_response]
low = "4h"
normal = "4h"
high = "1h"
[policy.standard.resolution]
low = "40h"
normal = "16h"
high = "8h"
"""
PERIOD = ("--since", "2026-11-02", "--until", "2026-11-15")  # --until's date counts whole: up to Nov 16 00:00


@pytest.fixture
def md(tmp_path):
    proc = MaildeskProcess(write_config(tmp_path, port=free_port(), files={"sla.toml": SLA_TOML}))
    proc.cli("db", "upgrade")
    store = open_store(f"sqlite:///{tmp_path}/var/maildesk.db")
    with store.sessions.begin() as session:
        store_dataset(session)
    store.dispose()
    return proc


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.external, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(a["src"])
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith(("data:", "#")):
                self.external.append(a[key])
        if tag in ("script", "link", "iframe", "object"):
            self.external.append(tag)


def test_report_text_json_and_csv_carry_the_figures(md):
    text = md.cli("report", *PERIOD).stdout.decode()
    assert "created           5 (+1 spam)" in text
    assert "first response    median 1.5 h (business 1.5 h), p90 18.0 h (business 2.0 h), n=4" in text
    assert "SLA first_response met 3, breached 2, running 0 (60% met)" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    data = json.loads(md.cli("report", *PERIOD, "--format", "json").stdout)
    assert data["sla"]["by_target"]["resolution"]["met_share"] == 0.6667 and data["agents"]["bob"]["replies"] == 3
    rows = dict(csv.reader(io.StringIO(md.cli("report", *PERIOD, "--format", "csv").stdout.decode())))
    assert rows["volume.by_channel.imap:support"] == "1" and rows["reopens.reopen_rate"] == "0.3333"
    assert rows["satisfaction.comments.1.comment"] == "slow"
    billing = json.loads(md.cli("report", *PERIOD, "--team", "billing", "--json").stdout)
    assert billing["volume"]["created"] == 2 and billing["period"]["team"] == "billing"


def test_html_report_is_one_self_contained_file_with_every_chart(md, tmp_path):
    out = tmp_path / "report.html"
    res = md.cli("report", *PERIOD, "--format", "html", "-o", str(out))
    assert "report written to" in res.stderr.decode()
    page = _Page()
    page.feed(out.read_text())
    page.close()
    assert page.external == []  # nothing to fetch: it renders offline
    assert len(page.images) == 6
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "great" in out.read_text() and "<table>" in out.read_text()


def test_bad_period_is_a_usage_error(md):
    res = md.cli("report", "--since", "2026-11-10", "--until", "2026-11-01", check=False)
    assert res.returncode == 64 and "--since" in res.stderr.decode()
    res = md.cli("report", "--since", "last tuesday", check=False)
    assert res.returncode == 64 and "expected a date like 2026-11-30" in res.stderr.decode()
