"""No page shows a ticket the viewer may not see: every ticket route answers 404 for it,
and lists, search and SLA pages leave it out. Reports: admins and team leads only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from maildesk.storage.models import MessageAttachment, TicketMessage
from tests.support import deliver, make_mail
from tests.web.conftest import csrf_of, make_ticket


@pytest.fixture
def tickets(web_desk):
    from maildesk.policy.sync import db_agent
    from maildesk.storage.models import Ticket

    msg = make_mail(subject="Alpha printer", sender="Jane <jane@customer.test>")
    msg.add_attachment(b"%PDF-1.4 alpha", maintype="application", subtype="pdf", filename="alpha.pdf")
    ta = deliver(web_desk, msg).ticket_id
    with web_desk.store.transaction() as s:
        s.get(Ticket, ta).team = "alpha"
        s.get(Ticket, ta).assignee = db_agent(s, "ann")
    return {"alpha": ta, "beta": make_ticket(web_desk, team="beta", subject="Beta printer", sender="Bo <bo@other.test>"),
            "bens": make_ticket(web_desk, assignee="ben", subject="Bens printer", sender="Cy <cy@third.test>"),
            "nobody": make_ticket(web_desk, subject="Nobodys printer", sender="Di <di@fourth.test>")}


SEES = {"root": {"alpha", "beta", "bens", "nobody"}, "ann": {"alpha"}, "ben": {"beta", "bens"}, "lea": {"alpha"}}


def _attachment_id(desk, number):
    with desk.store.read() as s:
        return s.scalar(select(MessageAttachment.id).join(TicketMessage, TicketMessage.id == MessageAttachment.message_id)
                        .where(TicketMessage.ticket_id == number))


@pytest.mark.parametrize("login", sorted(SEES))
def test_every_ticket_route_is_404_for_a_ticket_not_theirs(web_desk, client_for, tickets, login):
    c = client_for(login)
    csrf = csrf_of(c.get("/queue/mine").text)
    att = _attachment_id(web_desk, tickets["alpha"])
    for name, number in tickets.items():
        allowed = name in SEES[login]
        want = 200 if allowed else 404
        assert c.get(f"/t/{number}").status_code == want, (login, name)
        if name == "alpha":
            r = c.get(f"/t/{number}/a/{att}")
            assert r.status_code == want
            if allowed:
                assert r.content == b"%PDF-1.4 alpha"
                assert r.headers["content-disposition"].startswith("attachment;")
        else:  # another ticket's attachment through this ticket's URL
            assert c.get(f"/t/{number}/a/{att}").status_code == 404
        for action, data in (("note", {"text": "n"}), ("reply", {"text": "r"}), ("update", {"priority": "high"})):
            r = c.post(f"/t/{number}/{action}", data={**data, "csrf": csrf}, follow_redirects=False)
            assert r.status_code == (303 if allowed else 404), (login, name, action)
    assert c.get("/t/99999").status_code == 404


@pytest.mark.parametrize("login", sorted(SEES))
def test_lists_and_search_show_only_their_tickets(web_desk, client_for, tickets, login):
    c = client_for(login)
    pages = [c.get(p).text for p in ("/queue/mine", "/queue/team", "/queue/unassigned", "/sla", "/search?text=printer",
                                     "/search?status=new", "/search?requester=customer.test")]
    for name, number in tickets.items():
        shown = any(f'href="/t/{number}"' in p for p in pages)
        assert shown == (name in SEES[login]), (login, name)


def test_team_filter_for_another_team_is_404(web_desk, client_for, tickets):
    c = client_for("ann")
    assert c.get("/queue/team?team=beta").status_code == 404
    assert c.get("/queue/unassigned?team=beta").status_code == 404
    assert c.get("/queue/team?team=alpha").status_code == 200


def test_reports_for_admins_and_their_team_leads_only(web_desk, client_for, tickets):
    root, lea, ann = client_for("root"), client_for("lea"), client_for("ann")
    assert root.get("/reports").status_code == 200
    assert root.get("/reports?team=beta&days=7").status_code == 200
    r = lea.get("/reports?team=alpha")
    assert r.status_code == 200 and "data:image/png;base64," in r.text
    assert "unsafe-inline" not in r.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert lea.get("/reports?team=beta").status_code == 404
    assert ann.get("/reports").status_code == 404
    assert ann.get("/reports?team=alpha").status_code == 404
    assert root.get("/reports?days=3").status_code == 404


def test_queues_are_paginated(web_desk, client_for):
    from dataclasses import replace

    web_desk.config = replace(web_desk.config, web=replace(web_desk.config.web, page_size=2))
    numbers = [make_ticket(web_desk, team="alpha", sender=f"P{i} <p{i}@x.test>", subject=f"S{i}") for i in range(5)]
    c = client_for("ann")
    seen = set()
    for page in (1, 2, 3):
        text = c.get(f"/queue/team?page={page}").text
        seen |= {n for n in numbers if f'href="/t/{n}"' in text}
        assert ("page=" + str(page + 1)) in text or page == 3
    assert seen == set(numbers)
