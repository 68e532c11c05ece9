"""No backscatter (issue 13, point 5): mail a trusted upstream calls spam, or whose sender
fails DMARC in the topmost trusted Authentication-Results, gets no automatic reply. The
ticket is still opened and the reason recorded. Spam headers are believed only from the
filters listed in ``[auth] spam_headers``.
"""

from __future__ import annotations

import smtplib

from tests.security.helpers import settle, show
from tests.support.mail import make_mail

TRUSTED = {"trusted_authserv_ids": ["mx.example.test"], "spam_headers": ["spamassassin", "rspamd"]}


def _spam(i: int, headers: dict, *, ar: str | None = None) -> tuple[str, bytes]:
    victim = f"victim{i}@forged{i}.test"
    msg = make_mail(subject=f"Cheap watches, offer {i}", body="Buy now.", sender=victim, headers=headers)
    raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if ar:
        raw = f"Authentication-Results: {ar}\r\n".encode() + raw
    return victim, raw


def _send(d, mails) -> None:
    """One SMTP session, one transaction per forged sender."""
    with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as smtp:
        for sender, raw in mails:
            smtp.sendmail(sender, ["support@example.test"], raw)


def _acks(d) -> list[str]:
    return sorted(a for o in d.json("outbox", "list", "--limit", "1000") if o["kind"] == "ack" for a in o["to"])


def test_spam_and_dmarc_failures_get_no_acknowledgement(desk_factory, sink):
    mails = [_spam(i, {"X-Spam-Flag": "YES"}) for i in range(10)]
    mails += [_spam(10, {"X-Spam-Status": "Yes, score=9.1 required=5.0 tests=FORGED_SENDER"}),
              _spam(11, {"X-Rspamd-Action": "reject"}),
              _spam(12, {"X-Spam": "Yes"}),
              _spam(13, {}, ar="mx.example.test; dmarc=fail (p=reject) header.from=forged13.test"),
              _spam(14, {}, ar="mx.example.test; spf=fail smtp.mailfrom=victim14@forged14.test; dkim=none")]
    clean = _spam(15, {"X-Rspamd-Action": "no action", "X-Spam-Status": "No, score=0.1"},
                  ar="mx.example.test; dmarc=pass header.from=forged15.test")
    d = desk_factory(agents=False, auth=TRUSTED)
    _send(d, [*mails, clean])
    settle(d, len(mails) + 1)

    assert _acks(d) == [clean[0]], f"acknowledgements went to forged senders: {sorted(set(_acks(d)) - {clean[0]})}"
    tickets = d.json("tickets", "list", "--limit", "100")
    assert len(tickets) == len(mails) + 1, "spam must still open a ticket (unless a rule marks it spam)"
    for t in (t for t in tickets if t["requester"] in (mails[0][0], mails[13][0])):
        reasons = [e["detail"]["reason"] for e in show(d, t["ref"])["events"] if e["kind"] == "autoreply_suppressed"]
        assert reasons, f"{t['ref']}: no autoreply_suppressed event with the reason"


def test_ack_only_authenticated_and_spam_headers_of_an_unlisted_filter(desk_factory, sink):
    """``ack_only_authenticated = true``: an acknowledgement only when the topmost trusted
    Authentication-Results authenticates the From domain (dmarc=pass or an aligned pass).
    ``spam_headers`` left at its default ``[]``: anyone can write X-Spam-Flag, so it costs
    the authenticated senders no acknowledgement."""
    unproved = _spam(0, {})
    # written by the sender, below the one the receiving MTA put on top (which authenticates nothing)
    below = _spam(1, {"Authentication-Results": "mx.example.test; dmarc=pass header.from=forged1.test"},
                  ar="mx.example.test; spf=none smtp.mailfrom=forged1.test")
    proved = [_spam(2, {"X-Spam-Flag": "YES"}, ar="mx.example.test; dmarc=pass header.from=forged2.test"),
              _spam(3, {"X-Spam-Flag": "YES"}, ar="mx.example.test; dkim=pass header.d=forged3.test header.i=@forged3.test")]
    d = desk_factory(agents=False, auth={"trusted_authserv_ids": ["mx.example.test"], "ack_only_authenticated": True})
    _send(d, [unproved, below, *proved])
    settle(d, 4)
    assert _acks(d) == sorted(s for s, _ in proved)
    assert len(d.json("tickets", "list")) == 4
