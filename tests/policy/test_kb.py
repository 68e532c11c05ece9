"""Knowledge-base articles suggested in the acknowledgement."""

from __future__ import annotations

from maildesk.policy.kb import load_kb, suggest
from tests.support.config import ROOT
from tests.support.desk import deliver, outbox_mails, ticket_json
from tests.support.mail import make_mail


def test_shipped_articles_load(tmp_path):
    articles, problems = load_kb(ROOT / "config" / "kb")
    assert problems == [] and {a.slug for a in articles} >= {"printer-load-letter", "password-reset"}


def test_bad_articles_are_reported(tmp_path):
    (tmp_path / "a.md").write_text("no front matter")
    (tmp_path / "b.md").write_text('+++\ntitle = "B"\n+++\ntext')
    (tmp_path / "c.md").write_text('+++\ntitle = "C"\nkeywords = ["c"]\n+++\ntext C')
    articles, problems = load_kb(tmp_path)
    assert [a.slug for a in articles] == ["c"]
    assert [(p.file.endswith("a.md"), p.file.endswith("b.md")) for p in problems] == [(True, False), (False, True)]
    assert "keywords" in str(problems[1])


def test_matching_article_goes_into_the_ack(desk, tmp_path):
    kb = desk.config.config_dir / "kb"
    kb.mkdir(parents=True)
    (kb / "vpn.md").write_text('+++\ntitle = "VPN drops every hour"\nkeywords = ["vpn"]\n+++\nUpdate the client to 4.2.')
    desk.policy.poll()
    deliver(desk, make_mail(subject="My VPN keeps disconnecting"))
    body = outbox_mails(desk, "ack")[0].get_body(("plain",)).get_content()
    assert "== VPN drops every hour ==" in body and "Update the client to 4.2." in body
    assert any(e["kind"] == "kb_suggested" for e in ticket_json(desk, 1)["events"])
    deliver(desk, make_mail(subject="Invoice question", sender="x@customer.test"))
    assert "VPN drops" not in outbox_mails(desk, "ack")[1].get_body(("plain",)).get_content()
    assert suggest(desk.policy.kb, "nothing", "nothing") == []
