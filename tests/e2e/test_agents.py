"""Agents work from their mail client, end to end through SMTP with an aiosmtpd sink."""

from __future__ import annotations

import pytest

from tests.support.agents import AGENTS, agents_toml
from tests.support.mail import make_mail, send
from tests.support.servers import wait_until


@pytest.fixture
def desk_daemon(daemon_factory, sink):
    return daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": AGENTS})


def to(addr):
    return lambda m: any(a.addr_spec == addr for a in m["To"].addresses)


def notification_for(sink, login, ref="MD-1", event=None, count=1):
    def match(m):
        return to(f"{login}@example.test")(m) and f"[{ref}]" in m["Subject"] and (event is None or m["X-Maildesk-Event"] == event)
    return sink.wait_for(match, count=count)[-1]


def agent_reply(notification, login, body, *, outlook=True, sender=None, reply_to=True):
    token = notification["Reply-To"].addresses[0].addr_spec
    quoted = notification.get_body(("plain",)).get_content()
    if outlook:
        text = (f"{body}\n\nFrom: Example Support <support@example.test>\nSent: Monday, November 23, 2026 10:00 AM\n"
                f"To: {login}@example.test\nSubject: {notification['Subject']}\n\n{quoted}")
    else:
        text = f"{body}\n\nOn Mon, Nov 23, 2026 at 10:00 AM Example Support <support@example.test> wrote:\n" + \
               "\n".join("> " + line for line in quoted.splitlines())
    return make_mail(subject=f"RE: {notification['Subject']}", body=text, sender=sender or f"{login.title()} <{login}@example.test>",
                     to=token if reply_to else "support@example.test", in_reply_to=notification["Message-ID"])


def show(d, ref="MD-1"):
    return d.json("tickets", "show", ref)


def test_full_conversation(desk_daemon, sink):
    d = desk_daemon
    original = make_mail(subject="Cannot print invoices", body="The printer says PC LOAD LETTER.", cc="Carl Colleague <carl@customer.test>")
    send(d.port, original)
    note = notification_for(sink, "alice", event="new_ticket")
    notification_for(sink, "bob", event="new_ticket")
    assert "The printer says PC LOAD LETTER." in note.get_body(("plain",)).get_content()
    assert note["Reply-To"].addresses[0].username.startswith("support+t1-a-alice-")

    # Alice answers from Outlook: top-posted, quoted history below.
    send(d.port, agent_reply(note, "alice", "Hi Jane,\n\nplease load letter-size paper.\n\nAlice"))
    reply = sink.wait_for(lambda m: to("jane@customer.test")(m) and "Alice Agent via Example Support" in str(m["From"]))[0]
    text = reply.get_body(("plain",)).get_content()
    assert "please load letter-size paper." in text and "PC LOAD LETTER" not in text and "From: Example Support" not in text
    assert reply["From"].addresses[0].addr_spec == "support@example.test"
    assert reply["In-Reply-To"] == original["Message-ID"] and original["Message-ID"] in reply["References"]
    assert [a.addr_spec for a in reply["Cc"].addresses] == ["carl@customer.test"]
    assert reply["Auto-Submitted"] is None  # a person wrote it
    t = wait_until(lambda: (t := show(d)) and t["status"] == "pending" and t)
    assert t["first_response_at"] is not None

    # The customer answers: the ticket reopens and the agents hear of it.
    send(d.port, make_mail(subject=f"Re: {reply['Subject']}", body="Still broken.", in_reply_to=reply["Message-ID"]))
    wait_until(lambda: show(d)["status"] == "open", what="reopened")
    notification_for(sink, "alice", event="customer_reply")

    # Alice resolves with a text: the customer gets the text and the resolved notice.
    note2 = notification_for(sink, "alice", event="customer_reply")
    send(d.port, agent_reply(note2, "alice", "#status resolved\nFixed the driver, please try again.", outlook=False))
    sink.wait_for(lambda m: to("jane@customer.test")(m) and "Fixed the driver" in m.get_body(("plain",)).get_content())
    resolved = sink.wait_for(lambda m: to("jane@customer.test")(m) and "Resolved:" in m["Subject"])[0]
    assert resolved["Auto-Submitted"] == "auto-replied"
    assert wait_until(lambda: show(d)["status"] == "resolved")

    # ... and the customer's answer reopens it again.
    send(d.port, make_mail(subject=f"Re: {resolved['Subject']}", body="No, it is not fixed.", in_reply_to=resolved["Message-ID"]))
    wait_until(lambda: show(d)["status"] == "open", what="reopened after resolve")
    kinds = [m["kind"] for m in show(d)["messages"]]
    assert kinds.count("agent_reply") == 2 and kinds.count("customer") == 3


def test_note_reaches_other_agent_not_customer(desk_daemon, sink):
    d = desk_daemon
    send(d.port, make_mail(subject="VPN"))
    note = notification_for(sink, "alice")
    send(d.port, agent_reply(note, "alice", "#note\nCustomer is on the legacy VPN; secret-internal-detail."))
    relayed = notification_for(sink, "bob", event="note")
    assert "secret-internal-detail" in relayed.get_body(("plain",)).get_content()
    wait_until(lambda: any(m["kind"] == "note" for m in show(d)["messages"]))
    assert not [m for m in sink.parsed() if "secret-internal-detail" in m.as_string() and to("jane@customer.test")(m)]
    assert show(d)["status"] == "new"  # a note is not an answer


def test_commands_only_change_the_ticket(desk_daemon, sink):
    d = desk_daemon
    send(d.port, make_mail(subject="Refund"))
    note = notification_for(sink, "alice")
    send(d.port, agent_reply(note, "alice", "#priority high\n#assign bob\n#tag refund\n#cc boss@customer.test"))
    t = wait_until(lambda: (t := show(d)) and t["assignee"] == "bob" and t)
    assert t["priority"] == "high" and t["tags"] == ["refund"]
    assert notification_for(sink, "bob", event="assigned")
    actors = {e["actor"] for e in t["events"] if e["kind"] in ("priority", "assigned", "tag", "cc")}
    assert actors == {"agent:alice"}
    assert len([m for m in sink.parsed() if to("jane@customer.test")(m)]) == 1  # only the acknowledgement


def test_invalid_command_changes_nothing_and_tells_the_agent(desk_daemon, sink):
    d = desk_daemon
    send(d.port, make_mail(subject="Login"))
    note = notification_for(sink, "alice")
    send(d.port, agent_reply(note, "alice", "#priority high\n#asign bob\nHello Jane, done."))
    err = sink.wait_for(lambda m: to("alice@example.test")(m) and "not applied" in m["Subject"])[0]
    assert "#asign bob" in err.get_body(("plain",)).get_content()
    t = show(d)
    assert t["priority"] == "normal" and t["assignee"] is None
    assert any(e["kind"] == "command_rejected" for e in t["events"])
    assert len([m for m in sink.parsed() if to("jane@customer.test")(m)]) == 1


def test_forged_agent_from_runs_nothing_and_leaks_nothing(desk_daemon, sink):
    d = desk_daemon
    send(d.port, make_mail(subject="Account"))
    note = notification_for(sink, "alice")
    # The forger knows Alice's address and the ticket number, but not her token.
    forged = make_mail(subject="Re: [MD-1] Account", body="#status closed\n#assign bob\n#cc evil@attacker.test\nHi",
                       sender="Alice Agent <alice@example.test>", in_reply_to=note["Message-ID"])
    send(d.port, forged, mail_from="mallory@attacker.test")
    t = wait_until(lambda: (t := show(d)) and any(e["kind"] == "security" for e in t["events"]) and t)
    assert t["status"] == "new" and t["assignee"] is None
    assert any("not authenticated" in e["detail"]["reason"] for e in t["events"] if e["kind"] == "security")
    assert not [m for m in sink.parsed() if "attacker" in str(m["To"]) + str(m["Cc"] or "")]


def test_trusted_dkim_pass_authenticates_an_agent_without_token(daemon_factory, sink):
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": AGENTS},
                       extra='[auth]\ntrusted_authserv_ids = ["mx.example.test"]\ndkim_domains = ["example.test"]\n')
    send(d.port, make_mail(subject="DKIM"))
    notification_for(sink, "alice")
    good = make_mail(subject="Re: [MD-1] DKIM", body="#priority urgent", sender="alice@example.test",
                     headers={"Authentication-Results": "mx.example.test; dkim=pass header.d=example.test"})
    send(d.port, good)
    wait_until(lambda: show(d)["priority"] == "urgent", what="command applied")
    untrusted = make_mail(subject="Re: [MD-1] DKIM", body="#priority low", sender="alice@example.test",
                          headers={"Authentication-Results": "evil.example; dkim=pass header.d=example.test"})
    send(d.port, untrusted)
    wait_until(lambda: len(show(d)["messages"]) >= 3, what="untrusted mail stored as customer mail")
    assert show(d)["priority"] == "urgent"


def test_shipped_config_routes_vip_outage(daemon_factory, sink):
    """A VIP domain with "outage" in the subject: urgent, tier2, an on-duty tier-2 agent."""
    from datetime import UTC, datetime

    from maildesk.policy.agents import load_directory
    from tests.support.config import ROOT

    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", shipped_config=True)
    send(d.port, make_mail(subject="OUTAGE: nobody can log in", sender="Olga <ops@bigcorp.example.com>"))
    t = wait_until(lambda: (t := d.json("tickets", "list")) and t[0]["assignee"] and t[0], what="routed ticket")
    assert (t["priority"], t["team"]) == ("urgent", "tier2")
    directory = load_directory(ROOT / "config")
    on_duty = {a.login for a in directory.members(directory.team("tier2")) if a.available and a.on_duty(datetime.now(UTC))}
    assert t["assignee"] in on_duty
    events = show(d, t["ref"])["events"]
    matched = [e for e in events if e["kind"] == "rule_matched"]
    assert matched[0]["detail"]["rule"] == "vip-outage" and any("outage" in r.lower() for r in matched[0]["detail"]["reasons"])
    ack = sink.wait_for(lambda m: to("ops@bigcorp.example.com")(m))[0]
    assert "We aim to answer within" in ack.get_body(("plain",)).get_content()


def test_attachments_reach_agents_and_customers(desk_daemon, sink):
    d = desk_daemon
    shot = make_mail(subject="Error dialog", body="See the screenshot.")
    shot.add_attachment(b"\x89PNG\r\n\x1a\nfake-png-bytes", maintype="image", subtype="png", filename="error.png")
    send(d.port, shot)
    note = notification_for(sink, "alice", event="new_ticket")
    names = [p.get_filename() for p in note.iter_attachments()]
    assert names == ["error.png"] and next(note.iter_attachments()).get_content() == b"\x89PNG\r\n\x1a\nfake-png-bytes"
    answer = agent_reply(note, "alice", "Please install the attached patch.")
    answer.add_attachment(b"patch-bytes", maintype="application", subtype="octet-stream", filename="fix.patch")
    send(d.port, answer)
    reply = sink.wait_for(lambda m: to("jane@customer.test")(m) and "via Example Support" in str(m["From"]))[0]
    atts = {p.get_filename(): p.get_content() for p in reply.iter_attachments()}
    assert atts == {"fix.patch": b"patch-bytes"}
    stored = next(m for m in show(d)["messages"] if m["kind"] == "agent_reply")
    assert [a["filename"] for a in stored["attachments"]] == ["fix.patch"]


def test_shipped_config_vip_outage_reaches_alice_despite_her_opt_out(daemon_factory, sink):
    """alice opts out of new_ticket in the shipped agents.toml; vip-outage assigns an agent of
    tier2 and says notify = ["alice"]: she hears of it, once (assigned, or by the rule)."""
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", shipped_config=True)
    send(d.port, make_mail(subject="Outage: the portal is down", sender="Olga <ops@bigcorp.example.com>"))
    note = notification_for(sink, "alice")
    t = show(d)
    assert t["assignee"] in ("alice", "carol")
    if t["assignee"] == "alice":  # assigned to her: that notice, not a second "new ticket" from the rule
        assert note["X-Maildesk-Event"] == "assigned" and "Assigned to you" in note["Subject"]
    else:
        assert note["X-Maildesk-Event"] == "new_ticket" and "Rule vip-outage asks" in note.get_body(("plain",)).get_content()
        assert notification_for(sink, "carol", event="assigned")
    d.cli("outbox", "flush")
    wait_until(lambda: all(r["status"] != "queued" for r in d.json("outbox", "list")), what="outbox drained")
    assert len([m for m in sink.parsed() if to("alice@example.test")(m)]) == 1


def test_rule_notify_overrides_opt_out_and_assignee_hears_assigned(daemon_factory, sink):
    rules = ('[[rule]]\nname = "risky"\nwhen = { attachment_name = ["*.exe"] }\nthen = { notify = ["alice"] }\n\n'
             '[[rule]]\nname = "to-bob"\nthen = { team = "support", assign = "bob" }\n')
    agents = agents_toml(alice={"notify_opt_out": ["new_ticket"]})
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": agents, "rules.toml": rules})
    mail = make_mail(subject="Please run this")
    mail.add_attachment(b"MZ-not-really", maintype="application", subtype="octet-stream", filename="setup.exe")
    send(d.port, mail)
    to_alice = notification_for(sink, "alice", event="new_ticket")
    assert "Rule risky asks that you hear of it" in to_alice.get_body(("plain",)).get_content()
    to_bob = notification_for(sink, "bob", event="assigned")
    assert "rule to-bob assigned MD-1 to you" in to_bob.get_body(("plain",)).get_content()
    assert not [m for m in sink.parsed() if to("bob@example.test")(m) and m["X-Maildesk-Event"] == "new_ticket"]


NOBODY_AGENTS = """
[[agents]]
login = "alice"
name = "Alice Lead"
address = "alice@example.test"
notify_opt_out = ["new_ticket"]

[[agents]]
login = "bob"
name = "Bob Away"
address = "bob@example.test"
available = false

[[agents]]
login = "carol"
name = "Carol Busy"
address = "carol@example.test"
capacity = 0

[[teams]]
name = "support"
members = ["bob", "carol"]
lead = "alice"
strategy = "least_loaded"
"""


def test_nobody_can_take_it_recorded_shown_and_lead_told_once(daemon_factory, sink):
    rules = '[[rule]]\nname = "support"\non = "any"\nthen = { team = "support" }\n'
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": NOBODY_AGENTS, "rules.toml": rules})
    send(d.port, make_mail(subject="Nobody home?"))
    lead = notification_for(sink, "alice", event="no_assignee")
    why = "nobody in team support can take it: bob unavailable, carol at capacity (0/0)"
    assert why in lead.get_body(("plain",)).get_content() and "Nobody could be assigned" in lead["Subject"]
    t = show(d)
    assert t["assignee"] is None and t["unassigned_reason"] == why
    assert [e["detail"]["reason"] for e in t["events"] if e["kind"] == "unassigned"] == [why]
    assert f"unassigned: {why}" in d.cli("tickets", "show", "MD-1").stdout.decode()

    ack = sink.wait_for(to("jane@customer.test"))[0]
    send(d.port, make_mail(subject=f"Re: {ack['Subject']}", body="Hello?", in_reply_to=ack["Message-ID"]))
    notification_for(sink, "carol", event="customer_reply")  # the reply went through the rules again
    wait_until(lambda: len([e for e in show(d)["events"] if e["kind"] == "unassigned"]) == 2, what="second attempt recorded")
    d.cli("outbox", "flush")
    wait_until(lambda: all(r["status"] != "queued" for r in d.json("outbox", "list")), what="outbox drained")
    assert len([m for m in sink.parsed() if m["X-Maildesk-Event"] == "no_assignee"]) == 1  # once per ticket


def test_merge_then_commands_act_on_the_target_and_customer_is_told_where(desk_daemon, sink):
    d = desk_daemon
    send(d.port, make_mail(subject="Printer jams"))
    sink.wait_for(to("jane@customer.test"))  # MD-1 exists before MD-2
    send(d.port, make_mail(subject="Printer jams again", body="Same printer, same jam.", sender="Carl <carl@customer.test>"))
    note = notification_for(sink, "alice", ref="MD-2", event="new_ticket")
    send(d.port, agent_reply(note, "alice", "#merge MD-1\n#priority high\n#tag printer\nHello, we handle both reports in MD-1."))
    merged = sink.wait_for(lambda m: to("carl@customer.test")(m) and "Merged into MD-1" in m["Subject"])[0]
    text = merged.get_body(("plain",)).get_content()
    assert "now lives in MD-1" in text and '"Printer jams"' in text
    one, two = wait_until(lambda: (one := show(d, "MD-1")) and one["priority"] == "high" and (one, show(d, "MD-2")), what="merge")
    assert one["tags"] == ["printer"] and (two["priority"], two["tags"], two["status"]) == ("normal", [], "closed")
    assert two["merged_into"] == "MD-1" and one["merged_in"] == ["MD-2"]
    # The agent's text went out on MD-1, to its requester with the merged ticket's customer in Cc.
    reply = sink.wait_for(lambda m: "we handle both reports" in m.get_body(("plain",)).get_content())[0]
    assert "[MD-1]" in reply["Subject"] and [a.addr_spec for a in reply["Cc"].addresses] == ["carl@customer.test"]
    # MD-1 shows the whole conversation, MD-2's messages marked with their origin.
    origins = {m["text"].strip(): m["merged_from"] for m in one["messages"] if m["kind"] == "customer"}
    assert origins == {"My printer is on fire.": None, "Same printer, same jam.": "MD-2"}
    assert "(from merged MD-2)" in d.cli("tickets", "show", "MD-1").stdout.decode()
    # Carl answers the merge notice: it lands on MD-1; nobody was told "Closed".
    send(d.port, make_mail(subject=f"Re: {merged['Subject']}", body="Thanks!", sender="carl@customer.test",
                           in_reply_to=merged["Message-ID"]))
    wait_until(lambda: any(m["text"].strip() == "Thanks!" and m["merged_from"] is None for m in show(d, "MD-1")["messages"]),
               what="reply on the target")
    assert not [m for m in sink.parsed() if "Closed:" in str(m["Subject"])]
