"""A delivery worker killed (SIGKILL, the whole instance) inside a batch against a slow
smarthost: after the restart every acknowledgement arrives, and a Message-ID arrives twice
at most once per delivery worker (the mail whose 250 had arrived but was not yet recorded;
``[outbound] record_every = 1``, docs/scaling.md)."""

from __future__ import annotations

from collections import Counter

from tests.support.mail import make_mail, send
from tests.support.servers import wait_until

TICKETS = 30


def test_sigkill_inside_a_delivery_batch_resends_at_most_the_mail_in_flight(daemon_factory, sink):
    sink.data_delay = 0.15  # ~7 mails a second: a batch of 30 acknowledgements takes seconds
    d = daemon_factory(smarthost=f"127.0.0.1:{sink.port}")
    for i in range(TICKETS):
        send(d.port, make_mail(subject=f"Crash test {i}", sender=f"c{i}@customer.test"))
    # The worker is inside its batch: some acknowledgements accepted, more claimed and waiting.
    wait_until(lambda: len(sink.message_ids()) >= 8, timeout=30, what="8 acknowledgements at the sink")
    d.kill_group()
    before = len(sink.message_ids())
    assert before < TICKETS, "the batch finished before the kill: the test did not kill mid-batch"
    sink.data_delay = 0.0
    d.start()
    wait_until(lambda: len(set(sink.message_ids())) >= TICKETS, timeout=60, what="every acknowledgement delivered")
    counts = Counter(sink.message_ids())
    twice = {mid: n for mid, n in counts.items() if n > 1}
    assert len(counts) == TICKETS
    # One delivery worker, record_every = 1: at most the one mail in flight when it died.
    assert sum(n - 1 for n in twice.values()) <= 1, f"sent again after the restart: {twice}"
    # The sink has them all; the last outcome commits a moment later: then nothing is left claimed.
    wait_until(lambda: {r["status"] for r in d.json("outbox", "list", "--limit", "1000")} == {"sent"}, timeout=20,
               what="every outgoing mail recorded as sent")
