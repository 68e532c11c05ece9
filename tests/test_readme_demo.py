"""The README's "Try it" works as written: its Python one-liner sends the customer's mail,
and its agent block answers through the notification's Reply-To. The shell blocks are
taken from README.md and run in bash against a real daemon on the shipped config; only
the port and the path of the maildesk command are changed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.support.config import ROOT, write_config
from tests.support.servers import MaildeskProcess, free_port, wait_until


def sh_blocks(markdown: str, section: str) -> list[str]:
    body = markdown.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", body, re.S)


def block_with(blocks: list[str], needle: str) -> str:
    return next(b for b in blocks if needle in b)


@pytest.fixture
def demo(tmp_path):
    md = MaildeskProcess(write_config(tmp_path, port=free_port(), shipped_config=True))
    md.cli("db", "upgrade")
    md.start()
    yield md
    md.stop()


@pytest.mark.skipif(shutil.which("bash") is None, reason="the README's shell lines need bash")
def test_try_it_with_the_python_one_liner_then_answer_as_the_agent(demo):
    blocks = sh_blocks((ROOT / "README.md").read_text(), "Try it")
    maildesk = f"{sys.executable} -m maildesk --config {demo.config}"

    def run(script: str) -> str:
        script = script.replace('"127.0.0.1", 2525', f'"127.0.0.1", {demo.port}').replace(".venv/bin/maildesk", maildesk)
        res = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, env=demo.env(), timeout=120)
        assert res.returncode == 0, res.stderr
        return res.stdout

    one_liner = block_with(blocks, "send() {")
    assert "smtplib" in one_liner and "2525" in one_liner
    run(one_liner)
    wait_until(lambda: [m["kind"] for m in demo.json("outbox", "list")][-2:] == ["notification", "ack"], what="ack and notification")
    ticket = demo.json("tickets", "show", "MD-1")
    assert ticket["subject"] == "Принтер не печатает" and ticket["requester"] == "jane@customer.test"
    assert "Help, please" in ticket["messages"][0]["text"]

    ack = demo.cli("outbox", "show", "1").stdout.decode()
    assert "Subject: [MD-1] Re: Принтер не печатает" in ack and "To: jane@customer.test" in ack

    agent_block = block_with(blocks, "REPLY_TO=")
    run(one_liner.split("\n")[0] + "\n" + agent_block)
    answered = wait_until(lambda: (t := demo.json("tickets", "show", "MD-1"))["priority"] == "high" and t, what="the agent's answer")
    assert answered["status"] == "pending"
    reply = next(m for m in answered["messages"] if m["kind"] == "agent_reply")
    assert "Please switch it off and on again." in reply["text"] and "#priority" not in reply["text"]
    reply_id = wait_until(lambda: next((m["id"] for m in demo.json("outbox", "list") if m["kind"] == "reply"), None), what="the reply")
    sent = demo.json("outbox", "show", str(reply_id))
    assert sent["to"] == ["jane@customer.test"]
    assert any(name == "From" and "via Example Support" in value for name, value in sent["headers"])
