"""Sign-in by a mailed one-time link, sessions, CSRF, rate limits, security events."""

from __future__ import annotations

from sqlalchemy import select

from maildesk.storage.models import Event
from tests.web.conftest import csrf_of, signin_links


def _events(desk, kind):
    with desk.store.read() as s:
        return [e.detail for e in s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id))]


def test_agent_signs_in_by_the_mailed_link_once(web_desk, client_for):
    c = client_for()
    assert c.get("/queue/mine", follow_redirects=False).headers["location"] == "/signin"
    page = c.get("/signin")
    assert page.status_code == 200 and "maildesk_csrf" in page.headers["set-cookie"]
    r = c.post("/signin", data={"address": "Ann@Example.test", "csrf": csrf_of(page.text)})
    assert "Check your mail" in r.text
    [link] = signin_links(web_desk)
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits, url-safe base64
    # GET does not use the link (mail scanners follow links)
    page = c.get(link)
    page = c.get(link)
    r = c.post(link, data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/queue/mine"
    cookie = r.headers["set-cookie"]
    assert "maildesk_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # http base_url, no TLS
    assert "My queue" in c.get("/queue/mine").text
    assert _events(web_desk, "web_signin")
    # a second use is refused, and recorded
    other = client_for()
    page = other.get(link)
    r = other.post(link, data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 400
    assert any("used twice" in d["reason"] for d in _events(web_desk, "security"))


def test_link_expires_after_15_minutes(web_desk, client_for, clock):
    c = client_for()
    page = c.get("/signin")
    c.post("/signin", data={"address": "ann@example.test", "csrf": csrf_of(page.text)})
    [link] = signin_links(web_desk)
    clock.advance(minutes=16)
    page = c.get(link)
    assert c.post(link, data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 400
    assert any("expired" in d["reason"] for d in _events(web_desk, "security"))


def test_unknown_address_gets_the_same_answer_and_no_mail(web_desk, client_for):
    c = client_for()
    page = c.get("/signin")
    r = c.post("/signin", data={"address": "mallory@evil.test", "csrf": csrf_of(page.text)})
    assert "Check your mail" in r.text
    assert signin_links(web_desk) == []
    assert any("no agent" in d["reason"] for d in _events(web_desk, "security"))


def test_signin_without_csrf_is_refused(web_desk, client_for):
    c = client_for()
    c.get("/signin")
    assert c.post("/signin", data={"address": "ann@example.test", "csrf": "forged"}).status_code == 403
    assert signin_links(web_desk) == []


def test_signin_requests_are_rate_limited_per_address(web_desk, client_for):
    c = client_for()
    for _ in range(5):
        page = c.get("/signin")
        c.post("/signin", data={"address": "ann@example.test", "csrf": csrf_of(page.text)})
    assert len(signin_links(web_desk)) == 3  # [web] signin_per_address = 3 in the fixture
    assert any("rate limit" in d["reason"] for d in _events(web_desk, "security"))


def test_forged_or_unknown_link_is_refused(web_desk, client_for):
    c = client_for()
    page = c.get("/signin/" + "A" * 43)
    assert c.post("/signin/" + "A" * 43, data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 400


def test_forms_need_the_sessions_csrf_token(web_desk, client_for):
    from tests.web.conftest import make_ticket

    n = make_ticket(web_desk, team="alpha")
    c = client_for("ann")
    assert c.post(f"/t/{n}/note", data={"text": "x", "csrf": "nope"}).status_code == 403
    assert c.post(f"/t/{n}/note", data={"text": "x"}).status_code == 403
    page = c.get(f"/t/{n}")
    assert c.post(f"/t/{n}/note", data={"text": "x", "csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303


def test_tampered_session_cookie_is_not_a_session(web_desk, client_for):
    c = client_for("ann")
    value = c.cookies.get("maildesk_session")
    c.cookies.set("maildesk_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"), domain="desk.test")
    assert c.get("/queue/mine", follow_redirects=False).status_code == 303


def test_security_headers_on_every_page(web_desk, client_for):
    c = client_for()
    r = c.get("/signin")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_signin_requests_are_rate_limited_per_client(web_desk, client_for):
    from dataclasses import replace

    web_desk.config = replace(web_desk.config, web=replace(web_desk.config.web, signin_per_client=2))
    c = client_for()
    for login in ("nobody1", "ann", "ben", "root"):
        page = c.get("/signin")
        c.post("/signin", data={"address": f"{login}@example.test", "csrf": csrf_of(page.text)})
    assert len(signin_links(web_desk)) == 1  # the unknown address counted; ann got hers; ben and root were over the limit
    assert sum("per client" in d["reason"] for d in _events(web_desk, "security")) == 2
