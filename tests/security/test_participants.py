"""Who is on a ticket (issue 13, point 1): only a proof makes someone a participant.

Proofs are a valid signed reply address, or a reference to one of our Message-IDs that we
sent to that same sender. A stranger quoting someone else's Message-ID gets a new ticket
linked to the one they referenced; a spoofed ``From:`` of a participant is kept on the
ticket as unverified. Neither adds a recipient, counts as a survey answer, or is relayed.
The last test keeps the real conversation working: a Cc'd colleague replying-all to our
mail is proved by our Message-ID and stays on the ticket.
"""

from __future__ import annotations

import pytest

from tests.security.helpers import agent_reply, delivered, envelopes_to, mailed_to, notification_for, settle, show, to
from tests.support.mail import make_mail, send
from tests.support.servers import wait_until

JANE = "jane@customer.test"
EVE = "eve@stranger.test"
SPY = "spy@evil.test"
CARL = "carl@customer.test"
PRIVATE = "contract 4711-PRIVATE"


def _agent_replies(sink, marker: str):
    return wait_until(lambda: delivered(sink, lambda m: "via Example Support" in str(m["From"]) and marker in m.get_body(("plain",)).get_content()),
                      what=f"the agent reply containing {marker!r} at the sink")


@pytest.mark.parametrize("quoted", ["customer", "ack"])
def test_stranger_quoting_a_message_id_gets_a_linked_ticket_not_the_replies(desk_factory, sink, quoted):
    """Eve puts into In-Reply-To/References the customer's own Message-ID, or the one of the
    acknowledgement maildesk sent to the customer, and writes nothing else of Jane's."""
    d = desk_factory()
    original = make_mail(subject="Printer on fire")
    send(d.port, original)
    ack = sink.wait_for(lambda m: to(JANE)(m) and "[MD-1]" in m["Subject"])[0]
    note = notification_for(sink, "alice", event="new_ticket")
    mid = original["Message-ID"] if quoted == "customer" else ack["Message-ID"]
    send(d.port, make_mail(subject="Re: Printer on fire", body="Please keep me informed.", sender=f"Eve <{EVE}>",
                           in_reply_to=mid, references=mid), mail_from=EVE)
    settle(d, 2)

    send(d.port, agent_reply(note, "alice", f"Hi Jane, your {PRIVATE} is renewed."))
    [(envelope, reply)] = _agent_replies(sink, PRIVATE)
    assert EVE not in envelope.rcpt_tos, f"the agent's reply to Jane went to the stranger too: RCPT TO {envelope.rcpt_tos}"
    assert not mailed_to(reply, EVE) and not [e for e in envelopes_to(sink, EVE) if PRIVATE.encode() in e.original_content]

    ticket = show(d, "MD-1")
    assert EVE not in {m["from"] for m in ticket["messages"]}, "the stranger's mail was attached to Jane's ticket"
    assert EVE not in {p["address"] for p in ticket["participants"]}
    theirs = [t for t in d.json("tickets", "list") if t["requester"] == EVE]
    assert len(theirs) == 1 and theirs[0]["parent"] == "MD-1", f"expected a new ticket for Eve linked to MD-1, got {theirs}"


def test_spoofed_participant_with_subject_reference_adds_no_recipient(desk_factory, sink):
    """Mallory knows Jane's address and the (sequential) ticket number: From: Jane, [MD-1], Cc: spy."""
    d = desk_factory()
    send(d.port, make_mail(subject="Printer on fire"))
    note = notification_for(sink, "alice", event="new_ticket")
    forged = make_mail(subject="Re: [MD-1] Printer on fire", body="Please copy my colleague on everything.",
                       sender=f"Jane Customer <{JANE}>", cc=f"Colleague <{SPY}>")
    send(d.port, forged, mail_from="mallory@evil.test")
    settle(d, 2)

    send(d.port, agent_reply(note, "alice", f"Hi Jane, your {PRIVATE} is renewed."))
    [(envelope, reply)] = _agent_replies(sink, PRIVATE)
    assert SPY not in envelope.rcpt_tos, f"the spy was copied on the agent's reply: RCPT TO {envelope.rcpt_tos}"
    assert not mailed_to(reply, SPY) and not envelopes_to(sink, SPY), "the spy received mail from the desk"

    ticket = show(d)
    assert SPY not in {p["address"] for p in ticket["participants"]}
    [stored] = [m for m in ticket["messages"] if m["message_id"] == forged["Message-ID"]]
    assert (stored["kind"], stored["direction"], stored["verified"]) == ("unverified", "in", False)
    unverified = [e for e in ticket["events"] if e["kind"] == "unverified_mail"]
    assert unverified and SPY in unverified[0]["detail"]["new_addresses"]


def test_survey_answer_needs_a_proof(desk_factory, sink):
    """A "1" from a stranger threaded by the resolved mail's Message-ID, or from a spoofed
    requester with the subject reference, rates nothing; the requester's own reply does."""
    d = desk_factory()
    send(d.port, make_mail(subject="Printer on fire"))
    note = notification_for(sink, "alice", event="new_ticket")
    send(d.port, agent_reply(note, "alice", "#status resolved\nFixed the driver, please try again."))
    resolved = sink.wait_for(lambda m: to(JANE)(m) and "Resolved:" in m["Subject"])[0]
    wait_until(lambda: show(d)["status"] == "resolved", what="MD-1 resolved")

    send(d.port, make_mail(subject=f"Re: {resolved['Subject']}", body="1", sender=f"Eve <{EVE}>",
                           in_reply_to=resolved["Message-ID"], references=resolved["Message-ID"]), mail_from=EVE)
    send(d.port, make_mail(subject=f"Re: {resolved['Subject']}", body="1 terrible service"), mail_from="mallory@evil.test")
    settle(d, 4)
    assert show(d)["rating"] is None, f"an unproved survey answer was counted: {show(d)['rating']}"

    send(d.port, make_mail(subject=f"Re: {resolved['Subject']}", body="4 thanks, works again",
                           in_reply_to=resolved["Message-ID"], references=resolved["Message-ID"]))
    rating = wait_until(lambda: show(d)["rating"], what="the requester's rating")
    assert rating["score"] == 4


def test_colleague_replying_all_to_our_mail_stays_on_the_ticket(desk_factory, sink):
    """The legitimate flow the fix must keep: Jane Cc's Carl; the agent answers both; Carl
    replies-all to plain support@ with only In-Reply-To = our Message-ID sent to him (no
    token). That is a proof: his mail is verified, and the next agent reply reaches him."""
    d = desk_factory()
    send(d.port, make_mail(subject="Cannot print invoices", cc=f"Carl Colleague <{CARL}>"))
    note = notification_for(sink, "alice", event="new_ticket")
    send(d.port, agent_reply(note, "alice", "Hi Jane and Carl, please restart the printer."))
    [(envelope, reply)] = _agent_replies(sink, "please restart the printer")
    assert CARL in envelope.rcpt_tos

    carl = make_mail(subject=f"Re: {reply['Subject']}", body="Restarted it, still broken.", sender=f"Carl Colleague <{CARL}>",
                     to="support@example.test", cc=f"Jane Customer <{JANE}>", in_reply_to=reply["Message-ID"],
                     references=reply["Message-ID"])
    send(d.port, carl, mail_from=CARL)
    note2 = notification_for(sink, "alice", event="customer_reply")
    send(d.port, agent_reply(note2, "alice", "Thanks Carl, a technician is on the way."))
    [(envelope2, _)] = _agent_replies(sink, "a technician is on the way")
    assert CARL in envelope2.rcpt_tos and JANE in envelope2.rcpt_tos

    ticket = show(d)
    assert [t["ref"] for t in d.json("tickets", "list")] == ["MD-1"]
    [stored] = [m for m in ticket["messages"] if m["message_id"] == carl["Message-ID"]]
    assert (stored["kind"], stored["thread_via"], stored["verified"]) == ("customer", "header", True)
    assert {p["address"]: p["role"] for p in ticket["participants"]}.get(CARL) == "cc"
