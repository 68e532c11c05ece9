"""Bounces prove themselves (issue 13, point 3).

Every outgoing mail has its own signed envelope sender (VERP). Only a report that arrives
at such an address and names the recipient that row was sent to marks the row bounced,
notes the ticket and suppresses the address. Anything else with a null sender is kept in
the inbox as unverified and changes nothing: no suppression, no note, no ticket, no
agent notification.
"""

from __future__ import annotations

import re

from tests.security.helpers import bounce_report, delivered, notification_for, send_many, settle, show, to
from tests.support.mail import make_mail, send
from tests.support.servers import wait_until

JANE = "jane@customer.test"
EVE = "eve@stranger.test"
NULL_SENDER = ("", "<>")  # how `inbox list --json` shows MAIL FROM:<>
VERP = re.compile(r"support\+b[^@]+-[^@]+@example\.test")


def _ack(sink, addr: str, ref: str):
    return wait_until(lambda: delivered(sink, lambda m: to(addr)(m) and f"[{ref}]" in m["Subject"]), what=f"the {ref} ack to {addr}")[0]


def _ticket_of(d, subject: str) -> dict:
    return wait_until(lambda: next((t for t in d.json("tickets", "list") if t["subject"] == subject), None), what=f"ticket {subject!r}")


def _ack_outcome(d, ref: str) -> dict:
    """The acknowledged / autoreply_suppressed event of a new ticket."""
    return wait_until(lambda: next((e for e in show(d, ref)["events"] if e["kind"] in ("acknowledged", "autoreply_suppressed")), None),
                      what=f"{ref} acknowledged or not")


def test_forged_delivery_reports_change_nothing(desk_factory, sink):
    """Eve, a stranger with a ticket of her own, forges reports naming Jane: (a) about her own
    acknowledgement, sent to plain support@; (b) about Jane's acknowledgement, whose
    Message-ID she learned, with her own text; (c) sent to the envelope sender of her own
    acknowledgement (a real bounce address, but Jane is not that mail's recipient)."""
    d = desk_factory(agents=False)
    send(d.port, make_mail(subject="Printer on fire"))
    _, jane_ack = _ack(sink, JANE, "MD-1")
    send(d.port, make_mail(subject="Hello", sender=f"Eve <{EVE}>"), mail_from=EVE)
    eve_envelope, eve_ack = _ack(sink, EVE, "MD-2")

    send_many(d.port, [bounce_report(final_recipient=JANE, original_message_id=eve_ack["Message-ID"], text="forged-report-a")],
              mail_from="", rcpt=["support@example.test"])
    send_many(d.port, [bounce_report(final_recipient=JANE, original_message_id=jane_ack["Message-ID"],
                                     text="Your account is closed, call +1 555 0100 now (forged-report-b)")],
              mail_from="", rcpt=["support@example.test"])
    send_many(d.port, [bounce_report(final_recipient=JANE, original_message_id=eve_ack["Message-ID"], text="forged-report-c",
                                     rcpt=eve_envelope.mail_from)], mail_from="", rcpt=[eve_envelope.mail_from])
    rows = settle(d, 5)

    send(d.port, make_mail(subject="A second question"))
    second = _ticket_of(d, "A second question")
    problems = []
    outcome = _ack_outcome(d, second["ref"])
    if outcome["kind"] != "acknowledged":
        problems.append(f"Jane's next acknowledgement was suppressed: {outcome['detail']}")
    for ref in ("MD-1", "MD-2"):
        notes = [m["text"] for m in show(d, ref)["messages"] if m["kind"] == "system"]
        if notes:
            problems.append(f"a forged report added a system note to {ref}: {notes}")
    bounced = [o for o in d.json("outbox", "list") if o["status"] == "bounced"]
    if bounced:
        problems.append(f"a forged report marked outgoing mail bounced: {[(o['id'], o['to']) for o in bounced]}")
    reports = [r for r in rows if r["mail_from"] in NULL_SENDER]
    assert len(reports) == 3
    for r in reports:
        if r["ticket"] is not None or "unverified" not in (r["outcome"] or ""):
            problems.append(f"inbox {r['id']} should be kept as an unverified report with no ticket: {r['ticket']}, {r['outcome']!r}")
    assert not problems, "\n".join(problems)
    assert len(d.json("tickets", "list")) == 3


def test_bounce_to_the_signed_envelope_sender_is_believed(desk_factory, sink):
    """The positive case: a real bounce, sent to the VERP envelope sender of our acknowledgement
    and naming its recipient, marks the row bounced, notes the ticket, suppresses the address."""
    d = desk_factory(agents=False)
    send(d.port, make_mail(subject="Where is my order", sender="gone@customer.test"))
    envelope, ack = _ack(sink, "gone@customer.test", "MD-1")
    assert VERP.fullmatch(envelope.mail_from), f"outgoing mail has no signed envelope sender (VERP): MAIL FROM:<{envelope.mail_from}>"

    send_many(d.port, [bounce_report(final_recipient="gone@customer.test", original_message_id=ack["Message-ID"], rcpt=envelope.mail_from)],
              mail_from="", rcpt=[envelope.mail_from])
    wait_until(lambda: any(m["kind"] == "system" for m in show(d)["messages"]), what="the bounce note on MD-1")
    [row] = [o for o in d.json("outbox", "list") if o["message_id"] == ack["Message-ID"]]
    assert row["status"] == "bounced"

    send(d.port, make_mail(subject="Anyone there?", sender="gone@customer.test"))
    outcome = _ack_outcome(d, _ticket_of(d, "Anyone there?")["ref"])
    assert outcome["kind"] == "autoreply_suppressed" and "suppressed" in outcome["detail"]["reason"]


def test_plain_bounces_open_no_ticket_and_notify_no_one(desk_factory, sink):
    """20 null-sender "Returned mail" messages that are not RFC 3464 reports: kept in the inbox,
    no ticket, no agent notification. A customer mail after them still works (and is the
    barrier: its notification is rendered after any the bounces would have caused)."""
    d = desk_factory()
    bounces = [make_mail(subject="Returned mail: see transcript for details", sender=f"Mail Delivery Subsystem <MAILER-DAEMON@mx{i}.customer.test>",
                         body=f"Returned mail: user unknown\n\n   ----- The following addresses had permanent fatal errors -----\n<user{i}@customer.test>\n")
               for i in range(20)]
    send_many(d.port, bounces, mail_from="", rcpt=["support@example.test"])
    send(d.port, make_mail(subject="Barrier: a real question"))
    rows = settle(d, 21)
    notification_for(sink, "alice", ref=_ticket_of(d, "Barrier: a real question")["ref"], event="new_ticket")

    tickets = d.json("tickets", "list", "--limit", "100")
    assert [t["requester"] for t in tickets] == [JANE], f"bounces opened tickets: {len(tickets) - 1}"
    agents = ("alice@example.test", "bob@example.test", "carol@partner.test")
    notes = [m["Subject"] for _, m in delivered(sink, lambda m: any(to(a)(m) for a in agents))]
    assert all("Barrier" in s for s in notes), f"agents were notified of bounces: {notes}"
    kept = [r for r in rows if r["mail_from"] in NULL_SENDER]
    assert len(kept) == 20 and all(r["status"] == "processed" and r["ticket"] is None for r in kept)
