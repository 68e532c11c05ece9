"""Processing workers of several instances claim inbox rows before parsing them
(maildesk/process/claim.py): a row one worker holds is neither parsed nor processed by another,
and a claim is given back when the worker is done or its connection dies."""

from __future__ import annotations

from unittest import mock

from sqlalchemy import text

import maildesk.process.pipeline as pipeline
from maildesk.ingest.intake import Intake, RawMail
from maildesk.process.claim import NAMESPACE_SQL, InboxClaim
from tests.process.test_threadlock import pg_desks  # noqa: F401 - the fixture
from tests.support import make_mail


def _accept(desk, n: int) -> list[int]:
    intake = Intake(desk.store, desk.clock)
    return [intake.store_one(RawMail(make_mail(subject=f"Case {i}", sender=f"c{i}@customer.test").as_bytes(),
                                     f"c{i}@customer.test", ("support@example.test",), "smtp")) for i in range(n)]


def test_claims_are_disjoint_and_given_back(pg_desks):  # noqa: F811
    a, b = pg_desks
    first, second = InboxClaim(a.store), InboxClaim(b.store)
    assert first.take([1, 2, 3]) == [1, 2, 3]
    assert second.take([3, 2, 4, 5]) == [4, 5]
    first.release()
    assert second.take([1, 2, 3]) == [1, 2, 3]
    assert held(b) == 5
    second.release()
    assert held(b) == 0


def held(desk) -> int:
    """Inbox claims held in this schema, by any connection."""
    with desk.store.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
                                 f"AND classid = CAST({NAMESPACE_SQL} AS oid)")).scalar()


def test_a_row_held_by_another_worker_is_not_parsed(pg_desks):  # noqa: F811
    a, b = pg_desks
    ids = _accept(a, 6)
    other = InboxClaim(a.store)
    assert other.take(ids[:4]) == ids[:4]  # another instance's worker is busy with the first four
    parsed = []
    real = pipeline.parse

    def counting(raw, **kw):
        parsed.append(raw)
        return real(raw, **kw)

    with mock.patch.object(pipeline, "parse", counting):
        done = pipeline.process_pending(b, limit=2)  # the two oldest are held: it looks further
    assert sorted(r.inbox_id for r in done) == ids[4:]
    assert len(parsed) == 2  # only the rows it held
    other.release()
    assert sorted(r.inbox_id for r in pipeline.process_pending(b)) == ids[:4]
