"""The intake's group commit is bounded by bytes as well as by count (issue 14, item 2)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from maildesk.config.load import load_config
from maildesk.ingest.intake import Intake, RawMail
from maildesk.storage.models import InboxMail
from maildesk.storage.store import open_store
from tests.support.config import write_config
from tests.support.mail import make_mail
from tests.support.servers import free_port


def _mail(i: int, size: int) -> RawMail:
    raw = make_mail(subject=f"big {i}", body=("y" * 70 + "\n") * (size // 71)).as_bytes()
    return RawMail(raw, f"jane{i}@customer.test", ("support@example.test",), "smtp")


def _groups(tmp_path, sizes: list[int], **limits) -> tuple[list[list[int]], list[int], list[int]]:
    """Submit mails of ``sizes`` all at once; returns the groups committed (sizes of their
    mails), the ids each submitter got, and the ids stored."""
    store = open_store(load_config(write_config(tmp_path, port=free_port())).database.url)
    store.upgrade()
    intake = Intake(store, **limits)
    groups: list[list[int]] = []
    store_batch = intake.store_batch

    def recording(items, extra=None):
        groups.append([len(item.raw) for item in items])
        return store_batch(items, extra)

    intake.store_batch = recording
    mails = [_mail(i, size) for i, size in enumerate(sizes)]

    async def run():
        await intake.start()
        ids = await asyncio.gather(*(intake.submit(m) for m in mails))  # all queued before the writer runs
        await intake.stop()
        return ids

    try:
        ids = asyncio.run(run())
        with store.read() as s:
            stored = s.scalars(select(InboxMail.id).order_by(InboxMail.id)).all()
    finally:
        store.dispose()
    assert [n for g in groups for n in g] == [len(m.raw) for m in mails]  # every mail once, in order
    return groups, ids, stored


def test_a_commit_group_holds_at_most_commit_batch_bytes(tmp_path):
    groups, ids, stored = _groups(tmp_path, [300_000, 300_000, 300_000, 900_000, 100_000, 100_000], max_batch_bytes=700_000)
    assert [len(g) for g in groups] == [2, 1, 1, 2]  # the 900 KB mail alone, over the limit
    assert all(sum(g) <= 700_000 or len(g) == 1 for g in groups)
    assert sorted(ids) == stored and len(stored) == 6


def test_without_a_byte_limit_reached_one_group_commits_all(tmp_path):
    groups, ids, stored = _groups(tmp_path, [300_000] * 5, max_batch_bytes=10_000_000)
    assert [len(g) for g in groups] == [5]
    assert sorted(ids) == stored and len(stored) == 5


def test_the_count_limit_still_holds(tmp_path):
    groups, _ids, stored = _groups(tmp_path, [1_000] * 5, max_batch=2)
    assert [len(g) for g in groups] == [2, 2, 1] and len(stored) == 5


def test_a_stored_mail_is_not_held_while_the_next_one_arrives(tmp_path):
    """Once a mail is committed and its sender answered, the intake keeps no reference to it:
    the listener holds one large mail at a time, not the last one stored as well."""
    import gc
    import weakref

    store = open_store(load_config(write_config(tmp_path, port=free_port())).database.url)
    store.upgrade()
    intake = Intake(store)

    async def run():
        await intake.start()
        mail = _mail(1, 50_000)
        gone = weakref.ref(mail)
        inbox_id = await intake.submit(mail)
        del mail
        await asyncio.sleep(0.05)  # the writer is waiting for the next mail now
        gc.collect()
        alive = gone() is not None
        await intake.stop()
        return inbox_id, alive

    try:
        inbox_id, alive = asyncio.run(run())
    finally:
        store.dispose()
    assert inbox_id == 1 and not alive
