"""The customer's status page: reached by the link in their acknowledgement, their tickets
only, public conversation only, revocable by `maildesk customers rotate-key`."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support import ROOT, outbox_mails
from tests.web.conftest import csrf_of, make_ticket


def _link(desk, who: str) -> str:
    for m in outbox_mails(desk, "ack"):
        if who in str(m["To"]):
            return re.search(r"http://desk\.test(/status/\S+)", m.get_body(("plain",)).get_content()).group(1)
    raise AssertionError(f"no acknowledgement to {who}")


def test_ack_links_to_the_customers_own_tickets_public_part_only(web_desk, client_for):
    mine = make_ticket(web_desk, team="alpha", subject="Jane one", body="first question")
    theirs = make_ticket(web_desk, team="alpha", subject="Bob secret", sender="Bob <bob@other.test>")
    ann = client_for("ann")
    csrf = csrf_of(ann.get(f"/t/{mine}").text)
    ann.post(f"/t/{mine}/note", data={"csrf": csrf, "text": "INTERNAL do not show"})
    ann.post(f"/t/{mine}/reply", data={"csrf": csrf, "text": "Public answer"})
    link = _link(web_desk, "jane")
    c = client_for()
    page = c.get(link)
    assert page.status_code == 200
    assert "Jane one" in page.text and "Bob secret" not in page.text
    conv = c.get(f"{link}?ticket={mine}").text
    assert "first question" in conv and "Public answer" in conv
    assert "INTERNAL do not show" not in conv and "ann@example.test" not in conv
    assert c.get(f"{link}?ticket={theirs}").status_code == 404  # someone else's ticket through my link
    # the link grants nothing else
    assert c.get("/queue/mine", follow_redirects=False).status_code == 303
    assert c.get(f"/t/{mine}", follow_redirects=False).status_code == 303


def test_forged_link_is_404(web_desk, client_for):
    make_ticket(web_desk)
    link = _link(web_desk, "jane")
    c = client_for()
    assert c.get(link[:-1] + ("0" if link[-1] != "0" else "1")).status_code == 404
    other = link.replace(link.split("/")[2].split(".")[0], "Ym9iQG90aGVyLnRlc3Q")  # bob@other.test, jane's signature
    assert c.get(other).status_code == 404


def test_knowledge_base_is_searchable(web_desk, client_for, tmp_path):
    kb = web_desk.config.config_dir / "kb"
    kb.mkdir(parents=True, exist_ok=True)
    (kb / "paper.md").write_text('+++\ntitle = "Paper jam"\nkeywords = ["jam"]\n+++\nOpen tray 2 and pull the sheet.\n')
    (kb / "vpn.md").write_text('+++\ntitle = "VPN setup"\nkeywords = ["vpn"]\n+++\nInstall the client.\n')
    from maildesk.policy.files import PolicyFiles

    web_desk.policy = PolicyFiles(web_desk.config.config_dir, web_desk.renderer.names())
    make_ticket(web_desk)
    link = _link(web_desk, "jane")
    c = client_for()
    page = c.get(f"{link}?q=tray").text
    assert "Paper jam" in page and "VPN setup" not in page
    assert "pull the sheet" in c.get(f"{link}/kb/paper").text
    assert c.get(f"{link}/kb/nope").status_code == 404


def test_rotate_key_revokes_old_links(web_desk, client_for):
    make_ticket(web_desk)
    link = _link(web_desk, "jane")
    c = client_for()
    assert c.get(link).status_code == 200
    res = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(web_desk.config.path), "customers", "rotate-key",
                          "jane@customer.test"], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert c.get(link).status_code == 404
    new = res.stdout.strip().replace("http://desk.test", "")
    assert new != link and c.get(new).status_code == 200
