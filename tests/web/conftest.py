"""A desk with [web] on, three teams' worth of agents, and a signed-in client per agent."""

from __future__ import annotations

import re

import pytest

from tests.support import deliver, free_port, make_mail, outbox_mails, write_config

AGENTS = """
admins = ["root"]

[[agents]]
login = "root"
name = "Rita Root"
address = "root@example.test"

[[agents]]
login = "ann"
name = "Ann Alpha"
address = "ann@example.test"
teams = ["alpha"]

[[agents]]
login = "ben"
name = "Ben Beta"
address = "ben@example.test"
teams = ["beta"]

[[agents]]
login = "lea"
name = "Lea Lead"
address = "lea@example.test"

[[teams]]
name = "alpha"
members = ["ann"]
lead = "lea"

[[teams]]
name = "beta"
members = ["ben"]
"""


@pytest.fixture
def web_desk(tmp_path, clock):
    from maildesk.config.load import load_config
    from maildesk.daemon.build import build_desk, sync_directory

    path = write_config(tmp_path, port=free_port(), files={"agents.toml": AGENTS},
                        extra='[web]\nlisten = "127.0.0.1:8025"\nbase_url = "http://desk.test"\nsignin_per_address = 3\n')
    desk = build_desk(load_config(path), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    yield desk
    desk.store.dispose()


def make_ticket(desk, *, team=None, assignee=None, subject="Printer on fire", sender="Jane Customer <jane@customer.test>", body="Help"):
    """A ticket by mail, then put in ``team`` and assigned to ``assignee`` directly."""
    from maildesk.policy.sync import db_agent
    from maildesk.storage.models import Ticket

    result = deliver(desk, make_mail(subject=subject, sender=sender, body=body))
    number = result.ticket_id
    with desk.store.transaction() as s:
        t = s.get(Ticket, number)
        t.team = team
        t.assignee = db_agent(s, assignee) if assignee else None
    return number


CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(html: str) -> str:
    return CSRF.search(html).group(1)


def signin_links(desk) -> list[str]:
    return [re.search(r"http://desk\.test(/signin/\S+)", m.get_body(("plain",)).get_content()).group(1)
            for m in outbox_mails(desk, "signin")]


def sign_in(client, desk, address: str):
    page = client.get("/signin")
    r = client.post("/signin", data={"address": address, "csrf": csrf_of(page.text)})
    assert r.status_code == 200
    link = signin_links(desk)[-1]
    page = client.get(link)
    r = client.post(link, data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


@pytest.fixture
def client_for(web_desk):
    from starlette.testclient import TestClient

    from maildesk.web.app import build_app

    clients = []

    def make(login: str | None = None):
        c = TestClient(build_app(web_desk), base_url="http://desk.test")
        clients.append(c)
        if login:
            sign_in(c, web_desk, f"{login}@example.test")
        return c

    yield make
    for c in clients:
        c.close()
