"""Agent commands (issue 13, points 4 and 7): Authentication-Results read strictly, and
commands only from the agent's own text, never from quoted HTML.

Config: ``trusted_authserv_ids = ["mx.example.test"]``, ``dkim_domains = ["example.test"]``.
Only the topmost Authentication-Results header counts (our MTA prepends it; anything below
came from outside). A DKIM pass counts when ``header.d`` is the agent's domain exactly, the
domain is in ``dkim_domains`` and ``header.i`` (if any) lies in it; SPF only when
``smtp.mailfrom`` is the agent's own address; HELO never.
"""

from __future__ import annotations

from email.message import EmailMessage

from tests.security.helpers import all_events, delivered, notification_for, send_many, settle, show, text_of, to
from tests.support.mail import make_mail, send
from tests.support.servers import wait_until

AUTH = {"trusted_authserv_ids": ["mx.example.test"], "dkim_domains": ["example.test"]}
JANE = "jane@customer.test"


def _claimed_agent_mail(sender: str, commands: str, topmost_ar: str, *, forged_ar: str | None = None,
                        envelope: str | None = None) -> tuple[str, bytes]:
    """A mail with an agent's From:, no reply token, the ticket in the subject; ``topmost_ar`` is
    what the receiving MTA prepends, ``forged_ar`` a header the sender wrote into the mail itself."""
    msg = make_mail(subject="Re: [MD-1] Printer on fire", body=f"{commands}\nDone.", sender=sender,
                    headers={"Authentication-Results": forged_ar} if forged_ar else None)
    raw = f"Authentication-Results: {topmost_ar}\r\n".encode() + msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return envelope or sender, raw


# (tag the command would add, From, topmost AR from our MTA, AR written by the sender)
FORGED = [
    ("forged-below", "alice@example.test", "mx.example.test; spf=fail smtp.mailfrom=mallory@evil.test; dkim=none",
     "mx.example.test; dkim=pass header.d=example.test header.i=@example.test; spf=pass smtp.mailfrom=alice@example.test"),
    ("spf-other-address", "alice@example.test", "mx.example.test; spf=pass smtp.mailfrom=other@example.test; dkim=none", None),
    ("helo-only", "alice@example.test", "mx.example.test; spf=pass smtp.helo=example.test; dkim=none", None),
    ("dkim-unaligned", "alice@example.test", "mx.example.test; dkim=pass header.d=evil.test header.i=@example.test", None),
    ("dkim-domain-not-listed", "carol@partner.test", "mx.example.test; dkim=pass header.d=partner.test header.i=@partner.test", None),
]


def test_authentication_results_are_read_strictly(desk_factory, sink):
    d = desk_factory(auth=AUTH)
    send(d.port, make_mail(subject="Printer on fire"))
    notification_for(sink, "alice", event="new_ticket")
    for tag, sender, topmost, forged in FORGED:
        extra = "\n#status closed" if tag == "forged-below" else ""
        mail_from, raw = _claimed_agent_mail(sender, f"#tag {tag}{extra}", topmost, forged_ar=forged)
        send_many(d.port, [raw], mail_from=mail_from)
    mail_from, raw = _claimed_agent_mail("alice@example.test", "#tag dkim-aligned", "mx.example.test; dkim=pass header.d=example.test")
    send_many(d.port, [raw], mail_from=mail_from)
    settle(d, 2 + len(FORGED))

    tags = {tag: t["ref"] for t in d.json("tickets", "list") for tag in t["tags"]}
    ran = sorted(set(tags) - {"dkim-aligned"})
    assert not ran, f"commands ran as an agent without proper authentication: {ran}"
    assert show(d)["status"] != "closed", "#status closed from a mail with a forged Authentication-Results below ours ran"
    assert tags.get("dkim-aligned") == "MD-1", "the aligned DKIM pass for an agent of a dkim_domains domain no longer authenticates"
    security = [e for e in all_events(d) if e["kind"] == "security"]
    assert len(security) >= len(FORGED), f"expected a security event per forged agent mail, got {security}"


QUOTED_COMMAND = """<html><body><p></p>
<blockquote type="cite">#status closed<br>#cc spy@evil.test<br>My printer is on fire.</blockquote>
</body></html>"""

# Gmail in Portuguese: the attribution line is in no language the text heuristics know, the
# quote is still plainly marked up (div.gmail_quote).
QUOTED_HISTORY = """<html><body><div dir="ltr">Hello Jane, we are on it.</div><br>
<div class="gmail_quote"><div dir="ltr" class="gmail_attr">Em seg., 23 de nov. de 2026 \u00e0s 10:00, Example Support
&lt;support@example.test&gt; escreveu:<br></div>
<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">
Internal note by Bob: customer owes three invoices (quoted-history-7f3a)</blockquote></div></body></html>"""


def _html_reply(notification, html: str) -> EmailMessage:
    msg = make_mail(subject=f"Re: {notification['Subject']}", sender="Alice Agent <alice@example.test>",
                    to=notification["Reply-To"].addresses[0].addr_spec, in_reply_to=notification["Message-ID"])
    msg.set_content(html, subtype="html")
    return msg


def test_html_agent_reply_reads_no_command_from_quotes_and_relays_no_history(desk_factory, sink):
    """Alice replies from an HTML-only client: (1) her own text is empty and the quote holds
    ``#status closed``; (2) her own text is benign and the quote holds internal history."""
    d = desk_factory()
    send(d.port, make_mail(subject="Printer on fire", body="#status closed\n#cc spy@evil.test\nMy printer is on fire."))
    note = notification_for(sink, "alice", event="new_ticket")

    send(d.port, _html_reply(note, QUOTED_COMMAND))
    settle(d, 2)
    send(d.port, _html_reply(note, QUOTED_HISTORY))
    [(_, relayed)] = wait_until(lambda: delivered(sink, lambda m: to(JANE)(m) and "we are on it" in text_of(m)), what="the relayed reply")
    ticket = show(d)
    problems = []
    ran = [e for e in ticket["events"] if e["kind"] == "cc" or (e["kind"] == "status" and e["detail"].get("new") == "closed")]
    if ran or ticket["status"] == "closed":
        problems.append(f"a command quoted in HTML ran: status {ticket['status']}, {ran}")
    if "quoted-history-7f3a" in text_of(relayed):
        problems.append("the quoted HTML history was relayed to the customer")
    assert not problems, "\n".join(problems)
