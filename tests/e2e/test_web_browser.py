"""The web view end to end in a real browser (Playwright for Python driving Debian's
/usr/bin/chromium) against the real daemon: an agent signs in by the link mailed to the
sink, opens the queue and a ticket, replies from the page (the reply reaches the sink
threaded to the customer) and sets the status; the customer opens their status page
from the acknowledgement's link.

``MAILDESK_WEB_SCREENSHOTS=DIR`` also saves the queue, ticket, status and reports pages
there (docs/web-*.png are made this way: docs/web.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import service_missing
from tests.support import free_port, make_mail, send

CHROMIUM = "/usr/bin/chromium"
AGENTS = """
admins = ["carol"]

[[agents]]
login = "carol"
name = "Carol Jiménez"
address = "carol@example.test"
teams = ["tier1"]

[[agents]]
login = "bob"
name = "Bob Okafor"
address = "bob@example.test"
teams = ["tier1"]

[[teams]]
name = "tier1"
lead = "carol"
"""
RULES = """
[[rule]]
name = "everything-to-tier1"
then = { team = "tier1" }
"""


def _text(m) -> str:
    return m.get_body(("plain",)).get_content()


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        service_missing(f"{CHROMIUM} is not installed (Debian package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def test_agent_works_a_ticket_and_customer_follows_the_status_link(daemon_factory, sink, browser):
    web_port = free_port()
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": AGENTS, "rules.toml": RULES},
                       extra=f'[web]\nlisten = "127.0.0.1:{web_port}"\n')
    base = f"http://127.0.0.1:{web_port}"
    shots = os.environ.get("MAILDESK_WEB_SCREENSHOTS")
    customer = make_mail(subject="Printer prints only blank pages", sender="Jane Customer <jane@customer.test>",
                         body="Since this morning the printer on floor 2 prints blank pages.\nToner is new.")
    send(d.port, customer)
    for i, (who, subject) in enumerate((("Ola <ola@acme.test>", "VPN drops every hour"), ("Sam <sam@initech.test>", "Invoice 4411 twice"),
                                        ("Kim <kim@globex.test>", "Cannot reset my password"))):
        send(d.port, make_mail(subject=subject, sender=who, body=f"Details {i}"))
    [ack] = sink.wait_for(lambda m: "jane@customer.test" in str(m["To"]) and "[MD-1]" in m["Subject"])
    status_link = re.search(r"(http://\S+/status/\S+)", _text(ack)).group(1)
    sink.wait_for(lambda m: "[MD-" in str(m["Subject"]), count=4)

    page = browser.new_page(viewport={"width": 1280, "height": 860})
    # sign in by the mailed link
    page.goto(f"{base}/signin")
    page.fill("input[name=address]", "carol@example.test")
    page.click("text=Mail me a sign-in link")
    page.wait_for_selector("text=Check your mail")
    [mail] = sink.wait_for(lambda m: m["Subject"] == "Your sign-in link")
    link = re.search(r"(http://\S+/signin/\S+)", _text(mail)).group(1)
    page.goto(link)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/queue/mine")
    # the queue
    page.goto(f"{base}/queue/team")
    page.wait_for_selector("text=Printer prints only blank pages")
    if shots:
        page.screenshot(path=f"{shots}/web-queue.png", full_page=True)
    page.click("text=Printer prints only blank pages")
    page.wait_for_selector("text=Since this morning the printer")
    # reply from the page
    page.fill("form[action$='/reply'] textarea", "Please clean the drum unit; the steps are in the manual, page 12.")
    page.click("text=Send reply")
    page.wait_for_selector(".notice")
    [reply] = sink.wait_for(lambda m: "jane@customer.test" in str(m["To"]) and "drum unit" in _text(m))
    assert "[MD-1]" in reply["Subject"]
    assert customer["Message-ID"] in str(reply["References"]) or customer["Message-ID"] == str(reply["In-Reply-To"])
    assert "Carol Jiménez via Example Support" in str(reply["From"])
    # an internal note and the status
    page.fill("form[action$='/note'] textarea", "Drum unit is under warranty if she asks.")
    page.click("text=Add note")
    page.wait_for_selector(".msg-int")
    page.select_option("form[action$='/update'] select[name=status]", "resolved")
    page.click("text=Save changes")
    page.wait_for_selector(".notice")
    assert d.json("tickets", "show", "MD-1")["status"] == "resolved"
    if shots:
        page.screenshot(path=f"{shots}/web-ticket.png", full_page=True)
        page.goto(f"{base}/reports?days=7")
        page.wait_for_selector("img")
        page.screenshot(path=f"{shots}/web-reports.png", full_page=True)
    # the customer follows the link in the acknowledgement
    customer_page = browser.new_page(viewport={"width": 1100, "height": 700})
    customer_page.goto(status_link)
    customer_page.wait_for_selector("text=Printer prints only blank pages")
    customer_page.click("text=Printer prints only blank pages")
    customer_page.wait_for_selector("text=drum unit")
    html = customer_page.content()
    assert "under warranty" not in html and "carol@example.test" not in html
    assert "VPN drops" not in html  # someone else's ticket
    if shots:
        customer_page.screenshot(path=f"{shots}/web-status.png", full_page=True)
