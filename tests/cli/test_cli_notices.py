"""``maildesk notices list`` / ``retry`` and the notices in ``maildesk status``, through the real command."""

from __future__ import annotations

import json

from maildesk.outgoing.notices import send_notices
from tests.outgoing.test_notices import _broken_desk, _conversation
from tests.support import MaildeskProcess


def test_a_failed_notice_is_listed_retried_and_mailed(tmp_path, clock):
    desk, template = _broken_desk(tmp_path, clock, outbound="notice_max_attempts = 1")
    try:
        _conversation(desk)  # the "assigned" notice fails for good at its first attempt, the reply's is mailed
        send_notices(desk)
    finally:
        desk.store.dispose()
    md = MaildeskProcess(desk.config.path)
    rows = md.json("notices", "list")
    assert [(r["id"], r["status"], r["event"], r["ticket"], r["agents"], r["attempts"]) for r in rows] == [
        (2, "done", "customer_reply", "MD-1", ["dave"], 0), (1, "failed", "assigned", "MD-1", ["dave"], 1)]
    assert "no_such_variable" in rows[1]["last_error"] and rows[1]["next_attempt_at"] is None
    assert [r["id"] for r in md.json("notices", "list", "--failed")] == [1]
    human = md.cli("notices", "list", "--failed").stdout.decode()
    assert "failed" in human and "assigned" in human and "MD-1" in human and "customer_reply" not in human
    status = md.cli("status", "--json", check=False)  # exit 1: no listener runs here
    assert json.loads(status.stdout)["notices_failed"] == 1 and json.loads(status.stdout)["notices_pending"] == 0
    assert "notices: 0 pending, 1 failed" in md.cli("status", check=False).stdout.decode()

    for args, code, words in ((("retry",), 64, "notices retry needs an ID or --all"), (("retry", "1", "--all"), 64, "not both"),
                              (("retry", "99"), 66, "no notice 99; `maildesk notices list` shows the IDs"),
                              (("retry", "2"), 65, "notice 2 is done, not failed")):
        res = md.cli("notices", *args, check=False)
        assert (res.returncode, res.stdout) == (code, b"") and words in res.stderr.decode(), res.stderr
    assert md.json("notices", "list", "--failed") != []  # the errors changed nothing

    template.unlink()  # the operator fixes the template, then retries
    assert b"1 notice(s) due again" in md.cli("notices", "retry", "1").stdout
    assert md.json("notices", "list", "--failed") == []
    assert b"1 notification(s) rendered" in md.cli("outbox", "flush").stdout
    assert [r["status"] for r in md.json("notices", "list")] == ["done", "done"]
    assert b"0 notice(s) due again" in md.cli("notices", "retry", "--all").stdout
