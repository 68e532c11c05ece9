"""Unpredictable identifiers (issue 13, point 2): our Message-IDs come from ``secrets``.

Python's ``random`` (Mersenne Twister) can be reconstructed from its outputs, and
``email.utils.make_msgid`` adds only a time stamp and the pid, so an attacker who collects
acknowledgements to their own addresses could predict the Message-ID of the next mail we
send and thread into a ticket by header.
"""

from __future__ import annotations

import itertools
import random
import re
import smtplib
import time

import pytest

from tests.security.helpers import settle
from tests.support.mail import make_mail
from tests.support.servers import wait_until

COUNT = 1000
_ID = re.compile(r"<([A-Za-z0-9_-]+)@example\.test>")


def _common_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def test_outgoing_message_ids_are_random(desk_factory):
    """Property tested, over the acknowledgements of 1,000 mails from 1,000 senders:

    1. every Message-ID is ``<R@example.test>`` where R, the whole local part, is at least 26
       characters of a base32 ([a-z2-7]) or URL-safe base64 alphabet: at least 128 bits when
       each character carries 5 or 6 random bits (no time stamp, counter or pid fields);
    2. no two of the 1,000 share R;
    3. none is derivable from the one before it in the way counters and clocks are: no two
       consecutive ones share a prefix or a suffix of 6 characters or more, and each of the
       first 26 positions takes at least 16 different characters across the sample (a field
       that counts, or a clock, keeps its high characters fixed).

    Unpredictability of the generator itself (``secrets``, not ``random``) is tested below.
    """
    d = desk_factory(agents=False, maildir=True)
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as smtp:
        for i in range(COUNT):
            sender = f"user{i}@sender{i % 37}.test"
            smtp.send_message(make_mail(subject=f"Question {i}", sender=sender), from_addr=sender)
    settle(d, COUNT)
    rows = wait_until(lambda: (r := [o for o in d.json("outbox", "list", "--limit", str(2 * COUNT)) if o["kind"] == "ack"])
                      and len(r) >= COUNT and r, timeout=60, what=f"{COUNT} acknowledgements")
    assert time.monotonic() - started < 120
    ids = [o["message_id"] for o in sorted(rows, key=lambda o: o["id"])]

    bad = [m for m in ids if not _ID.fullmatch(m or "") or len(_ID.fullmatch(m).group(1)) < 26]
    assert not bad, f"{len(bad)} Message-IDs are not <RANDOM(>= 26 chars)@example.test>, e.g. {bad[:3]}"
    randoms = [_ID.fullmatch(m).group(1) for m in ids]
    assert len(set(randoms)) == COUNT, f"{COUNT - len(set(randoms))} repeated Message-IDs"
    close = [(a, b) for a, b in itertools.pairwise(randoms) if _common_prefix(a, b) >= 6 or _common_prefix(a[::-1], b[::-1]) >= 6]
    assert not close, f"consecutive Message-IDs share a long prefix or suffix: {close[:3]}"
    fixed = [i for i in range(20) if len({r[i] for r in randoms}) < 16]  # the last characters may carry fewer bits
    assert not fixed, f"positions {fixed} take fewer than 16 different characters over {COUNT} Message-IDs"


def _via_compose(domain: str) -> str:
    from maildesk.outgoing.mailbuild import Outgoing, compose

    return compose(Outgoing(f"support@{domain}", "Support", [("", "jane@customer.test")], "Subject", "text"))[1]


def _via_new_message_id(domain: str) -> str:
    from maildesk.outgoing.mailbuild import new_message_id

    return new_message_id(domain)


@pytest.mark.parametrize("generate", [_via_new_message_id, _via_compose], ids=["new_message_id", "compose"])
def test_message_ids_do_not_come_from_random(generate):
    """Reseeding Python's ``random`` identically before two calls must not repeat the ID (it
    would, within the same clock tick, if the ID came from ``random``)."""
    state = random.getstate()
    try:
        pairs = []
        for _ in range(5):
            random.seed(1234)
            first = generate("example.test")
            random.seed(1234)
            pairs.append((first, generate("example.test")))
    finally:
        random.setstate(state)
    assert all(a != b for a, b in pairs), f"the same Message-ID after reseeding random: {[a for a, b in pairs if a == b]}"
    assert all(_ID.fullmatch(a) for a, _ in pairs), f"not <RANDOM@example.test>: {pairs[0][0]}"
