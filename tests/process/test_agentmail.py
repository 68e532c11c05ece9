"""Agent commands and notifications in-process (the socket-level scenarios are in test_e2e_agents.py)."""

from __future__ import annotations

import pytest

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from maildesk.outgoing.tokens import ReplyToken, make_address
from tests.support import deliver, free_port, make_mail, outbox_mails, ticket_json, write_config

AGENTS = """
[[agents]]
login = "alice"
name = "Alice Agent"
address = "alice@example.test"
teams = ["support"]
[[agents]]
login = "bob"
name = "Bob Builder"
address = "bob@example.test"
teams = ["support", "billing"]
notify_opt_out = ["new_ticket"]
[[teams]]
name = "support"
members = ["alice", "bob"]
lead = "alice"
[[teams]]
name = "billing"
members = ["bob"]
"""


@pytest.fixture
def adesk(tmp_path, clock):
    cfg = write_config(tmp_path, port=free_port(), files={"agents.toml": AGENTS})
    desk = build_desk(load_config(cfg), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    yield desk
    desk.store.dispose()


def as_agent(desk, login, number, body, subject="Re: x"):
    token = make_address(desk.secret, "support@example.test", ReplyToken("t", number, login))
    return deliver(desk, make_mail(subject=subject, body=body, sender=f"{login}@example.test", to=token), rcpt=(token,))


def notified(desk, address):
    return [m for m in outbox_mails(desk, "notification") if m["To"].addresses[0].addr_spec == address]


def test_opt_out_per_event_kind(adesk):
    deliver(adesk, make_mail())
    assert len(notified(adesk, "alice@example.test")) == 1
    assert notified(adesk, "bob@example.test") == []  # bob opted out of new_ticket
    deliver(adesk, make_mail(subject="Re: [MD-1] more", body="more info"))
    assert [m["X-Maildesk-Event"] for m in notified(adesk, "bob@example.test")] == ["customer_reply"]


def test_team_tag_untag_cc_close(adesk):
    deliver(adesk, make_mail())
    res = as_agent(adesk, "alice", 1, "#team billing\n#tag vip\n#tag refund\n#untag vip\n#cc boss@customer.test\n#close")
    assert res.status == "processed", res.text
    t = ticket_json(adesk, 1)
    assert (t["team"], t["tags"], t["status"]) == ("billing", ["refund"], "closed")
    closed = [m for m in outbox_mails(adesk, "status") if "Closed:" in m["Subject"]]
    assert len(closed) == 1
    assert any(e["kind"] == "cc" and e["detail"]["address"] == "boss@customer.test" for e in t["events"])


def test_merge_moves_future_mail_to_the_target(adesk):
    deliver(adesk, make_mail(subject="first"))
    deliver(adesk, make_mail(subject="duplicate of first"))
    as_agent(adesk, "alice", 2, "#merge MD-1")
    two = ticket_json(adesk, 2)
    assert two["merged_into"] == "MD-1" and two["status"] == "closed"
    assert any(e["kind"] == "merged_in" for e in ticket_json(adesk, 1)["events"])
    res = deliver(adesk, make_mail(subject="Re: [MD-2] duplicate of first", body="any news?"))
    assert res.ticket_id == 1


@pytest.mark.parametrize("body, problem", [
    ("#merge MD-999", "there is no ticket"),
    ("#merge MD-1", "cannot be merged into itself"),
    ("#assign zed", "no agent 'zed'"),
    ("#team nope", "no team 'nope'"),
    ("#status done", "expected one of open, pending, resolved, closed"),
    ("#cc not-an-address", "expected one mail address"),
    ("#frobnicate", "unknown command"),
])
def test_invalid_commands_change_nothing(adesk, body, problem):
    deliver(adesk, make_mail())
    before = ticket_json(adesk, 1)
    as_agent(adesk, "alice", 1, "#priority urgent\n" + body + "\nSome text for the customer.")
    after = ticket_json(adesk, 1)
    assert (after["priority"], after["status"], after["team"]) == (before["priority"], before["status"], before["team"])
    err = [m for m in outbox_mails(adesk, "error")]
    assert len(err) == 1 and problem in err[0].get_body(("plain",)).get_content()
    assert [m for m in outbox_mails(adesk, "reply")] == []


def test_assign_me_and_first_response(adesk, clock):
    deliver(adesk, make_mail())
    clock.advance(minutes=30)
    as_agent(adesk, "bob", 1, "#assign me\nOn it.")
    t = ticket_json(adesk, 1)
    assert t["assignee"] == "bob" and t["status"] == "pending" and t["first_response_at"] == clock.now.isoformat()
    assert notified(adesk, "bob@example.test") == []  # no mail to yourself about your own assignment


def test_large_attachments_are_listed_not_copied_into_notifications(tmp_path, clock):
    cfg = write_config(tmp_path, port=free_port(), files={"agents.toml": AGENTS},
                       extra="[workflow]\nnotification_attachments_max = 100\n")
    desk = build_desk(load_config(cfg), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    msg = make_mail(subject="files")
    msg.add_attachment(b"s" * 50, maintype="text", subtype="plain", filename="small.txt")
    msg.add_attachment(b"L" * 500, maintype="application", subtype="octet-stream", filename="large.bin")
    deliver(desk, msg)
    note = notified(desk, "alice@example.test")[0]
    assert [p.get_filename() for p in note.iter_attachments()] == ["small.txt"]
    assert "large.bin (500 bytes)" in note.get_body(("plain",)).get_content()
    assert len(ticket_json(desk, 1)["messages"][0]["attachments"]) == 2  # both stay on the ticket
    desk.store.dispose()


def test_cc_argument_is_stored_like_incoming_addresses():
    """An IDN domain in #cc is stored in its xn-- form, as the person's own mail will be
    parsed, so their replies match the participant (and prove themselves)."""
    from maildesk.process.commands import parse_commands

    parsed = parse_commands("#cc Jan@Bücher.example\nthanks", "MD")
    assert [(c.name, c.arg) for c in parsed.commands] == [("cc", "jan@xn--bcher-kva.example")]


def test_commands_after_merge_act_on_the_target(adesk):
    deliver(adesk, make_mail(subject="first"))
    deliver(adesk, make_mail(subject="duplicate of first", sender="carl@customer.test"))
    res = as_agent(adesk, "alice", 2, "#merge MD-1\n#assign bob\n#status pending\n#note\nSame as MD-1.")
    assert res.status == "processed" and "now on MD-1" in res.text, res.text
    one, two = ticket_json(adesk, 1), ticket_json(adesk, 2)
    assert (one["assignee"], one["status"]) == ("bob", "pending") and (two["assignee"], two["status"]) == (None, "closed")
    assert [m["text"] for m in one["messages"] if m["kind"] == "note"] == ["Same as MD-1."]
    assert {p["address"]: p["role"] for p in one["participants"]}["carl@customer.test"] == "cc"
    status = outbox_mails(adesk, "status")
    assert [m["Subject"] for m in status] == ["[MD-2] Merged into MD-1: duplicate of first"]
    assert status[0]["To"].addresses[0].addr_spec == "carl@customer.test"


def test_one_merge_per_mail(adesk):
    for subject in ("a", "b", "c"):
        deliver(adesk, make_mail(subject=subject))
    as_agent(adesk, "alice", 3, "#merge MD-1\n#merge MD-2")
    assert ticket_json(adesk, 3)["merged_into"] is None
    error = outbox_mails(adesk, "error")
    assert "one #merge per mail" in error[0].get_body(("plain",)).get_content()
