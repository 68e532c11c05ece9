"""End to end: the autodetect corpus over SMTP into the real daemon; what reaches the sink.

Each sample is sent from the address in its From: (not a null return path, which the old
guards already honoured), as gateways, appliances and autoresponders often do.
"""

from __future__ import annotations

import smtplib
from email.parser import BytesHeaderParser
from email.utils import parseaddr

from bench.autodetect import load
from tests.support.servers import wait_until


def _sender(raw: bytes) -> str:
    return parseaddr(str(BytesHeaderParser().parsebytes(raw)["from"] or ""))[1].lower()


def test_no_corpus_bounce_or_autoreply_is_acknowledged_and_every_customer_is(daemon, sink):
    samples = load()
    automatic = {_sender(raw) for kind, _, raw in samples if kind != "ordinary"}
    customers = {_sender(raw) for kind, _, raw in samples if kind == "ordinary"}
    assert len(customers) == sum(kind == "ordinary" for kind, _, _ in samples) and not automatic & customers
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as smtp:
        for _, _, raw in samples:  # bounces and autoreplies first: they are processed before the customers' mail
            smtp.sendmail(_sender(raw), ["support@example.test"], raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))

    acks = sink.wait_for(lambda m: m["To"].addresses[0].addr_spec.lower() in customers, count=len(customers), timeout=90)
    assert {m["To"].addresses[0].addr_spec.lower() for m in acks} == customers
    rows = wait_until(lambda: (r := daemon.json("inbox", "list", "--limit", "500")) and all(x["status"] != "pending" for x in r) and r,
                      timeout=60, what="every message processed")
    assert len(rows) == len(samples)
    assert [r for r in rows if r["status"] == "failed"] == []
    answered = {rcpt.lower() for envelope in sink.messages for rcpt in envelope.rcpt_tos}
    assert answered & automatic == set(), "a bounce or autoresponder got an automatic reply"
