"""The ticket page's forms go through the #command code: same events, same mail."""

from __future__ import annotations

from sqlalchemy import select

from maildesk.storage.models import Event, Ticket
from tests.support import deliver, make_mail, outbox_mails, ticket_json
from tests.web.conftest import csrf_of, make_ticket


def _events(desk, number):
    with desk.store.read() as s:
        return [(e.actor, e.kind, e.detail) for e in s.scalars(select(Event).where(Event.ticket_id == number).order_by(Event.id))]


def test_reply_from_the_page_reaches_the_customer_threaded(web_desk, client_for):
    n = make_ticket(web_desk, team="alpha")
    ack = outbox_mails(web_desk, "ack")[-1]
    c = client_for("ann")
    csrf = csrf_of(c.get(f"/t/{n}").text)
    r = c.post(f"/t/{n}/reply", data={"text": "Switch it off and on again.", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    [reply] = outbox_mails(web_desk, "reply")
    assert reply["To"].addresses[0].addr_spec == "jane@customer.test"
    assert "Ann Alpha via Example Support" in str(reply["From"])
    assert f"[MD-{n}]" in reply["Subject"]
    assert reply["In-Reply-To"]  # answers the customer's mail, like a reply from a mail client
    assert "Switch it off and on again." in reply.get_body(("plain",)).get_content()
    assert reply["Reply-To"] != ack["Reply-To"]  # the agent's signed token, as for a mail reply
    kinds = [(a, k) for a, k, _ in _events(web_desk, n)]
    assert ("agent:ann", "agent_reply") in kinds and ("agent:ann", "first_response") in kinds
    assert ticket_json(web_desk, n)["status"] == "pending"  # [workflow] agent_reply_status


def test_note_is_internal_and_marked(web_desk, client_for):
    n = make_ticket(web_desk, team="alpha")
    before = len(outbox_mails(web_desk))
    c = client_for("ann")
    csrf = csrf_of(c.get(f"/t/{n}").text)
    c.post(f"/t/{n}/note", data={"text": "Customer is a VIP", "csrf": csrf})
    assert [m for m in outbox_mails(web_desk)[before:] if m["To"] and "jane" in str(m["To"])] == []
    page = c.get(f"/t/{n}").text
    assert "Internal note" in page and "Customer is a VIP" in page and "msg-int" in page
    assert ("agent:ann", "note") in [(a, k) for a, k, _ in _events(web_desk, n)]


def test_update_changes_status_priority_assignee_team_tags(web_desk, client_for):
    n = make_ticket(web_desk, team="alpha")
    c = client_for("root")
    csrf = csrf_of(c.get(f"/t/{n}").text)
    r = c.post(f"/t/{n}/update", data={"csrf": csrf, "status": "resolved", "priority": "urgent", "assignee": "ben",
                                       "team": "beta", "add_tags": "vip printer"}, follow_redirects=False)
    assert r.status_code == 303
    t = ticket_json(web_desk, n)
    assert (t["status"], t["priority"], t["assignee"], t["team"], t["tags"]) == ("resolved", "urgent", "ben", "beta", ["vip", "printer"])
    kinds = {k for a, k, _ in _events(web_desk, n) if a == "agent:root"}
    assert {"status", "priority", "assigned", "team", "tag"} <= kinds
    assert outbox_mails(web_desk, "status")  # the customer hears of "resolved", as with #status resolved by mail
    c.post(f"/t/{n}/update", data={"csrf": csrf, "remove_tags": "vip"})
    assert ticket_json(web_desk, n)["tags"] == ["printer"]


def test_bad_values_change_nothing(web_desk, client_for):
    n = make_ticket(web_desk, team="alpha")
    c = client_for("ann")
    csrf = csrf_of(c.get(f"/t/{n}").text)
    assert c.post(f"/t/{n}/update", data={"csrf": csrf, "status": "deleted"}).status_code == 400
    assert c.post(f"/t/{n}/update", data={"csrf": csrf, "assignee": "nobody"}).status_code == 400
    assert c.post(f"/t/{n}/update", data={"csrf": csrf, "add_tags": "bad<tag>"}).status_code == 400
    assert c.post(f"/t/{n}/reply", data={"csrf": csrf, "text": ""}).status_code == 400
    with web_desk.store.read() as s:
        assert s.get(Ticket, n).status == "new"


def test_html_mail_is_shown_as_text_and_sanitized(web_desk, client_for):
    msg = make_mail(subject="Fancy", body="plain part")
    msg.add_alternative('<p onclick="x()">Hi <script>alert(1)</script><img src="http://track.test/p.gif">'
                        '<a href="javascript:alert(2)">click</a> <b>bold</b></p>', subtype="html")
    n = deliver(web_desk, msg).ticket_id
    with web_desk.store.transaction() as s:
        s.get(Ticket, n).team = "alpha"
    page = client_for("ann").get(f"/t/{n}").text
    assert "<script>alert" not in page and "onclick" not in page and "track.test" not in page and "javascript:" not in page
    assert "<b>bold</b>" in page and "plain part" in page


def test_reply_with_a_file_sends_and_keeps_it(web_desk, client_for):
    n = make_ticket(web_desk, team="alpha")
    c = client_for("ann")
    csrf = csrf_of(c.get(f"/t/{n}").text)
    r = c.post(f"/t/{n}/reply", data={"text": "The manual is attached.", "csrf": csrf},
               files={"files": ("../../manual.pdf", b"%PDF-1.4 manual", "application/pdf")}, follow_redirects=False)
    assert r.status_code == 303
    [reply] = outbox_mails(web_desk, "reply")
    [att] = list(reply.iter_attachments())
    assert att.get_filename() == "manual.pdf" and att.get_payload(decode=True) == b"%PDF-1.4 manual"
    page = c.get(f"/t/{n}").text
    assert "manual.pdf" in page
