"""What the mail templates and `tickets show` put in front of people, end to end (issue 15, item 7)."""

from __future__ import annotations

import smtplib

import pytest

from maildesk.config.load import load_config
from maildesk.daemon.build import build_desk, sync_directory
from tests.e2e.test_agents import agent_reply, notification_for, show, to
from tests.process.test_agentmail import as_agent
from tests.support.agents import AGENTS
from tests.support.config import write_config
from tests.support.desk import deliver, outbox_mails
from tests.support.mail import make_mail, send
from tests.support.servers import MaildeskProcess, free_port


@pytest.fixture
def desk_daemon(daemon_factory, sink):
    return daemon_factory(smarthost=f"127.0.0.1:{sink.port}", files={"agents.toml": AGENTS},
                          extra="[workflow]\nnotification_attachments_max = 100\n")


def body(m) -> str:
    return m.get_body(("plain",)).get_content().replace("\r\n", "\n")


def test_attachment_line_and_the_held_back_note(desk_daemon, sink):
    d = desk_daemon
    small = make_mail(subject="Small file")
    small.add_attachment(b"x" * 20, maintype="image", subtype="png", filename="small.png")
    send(d.port, small)
    text = body(notification_for(sink, "alice", event="new_ticket"))
    assert "Attachments: small.png (20 bytes)\n" in text and "forwarding limit" not in text

    both = make_mail(subject="Two files")
    both.add_attachment(b"x" * 20, maintype="image", subtype="png", filename="small.png")
    both.add_attachment(b"y" * 500, maintype="application", subtype="octet-stream", filename="big.bin")
    send(d.port, both)
    note = notification_for(sink, "alice", ref="MD-2", event="new_ticket")
    assert [p.get_filename() for p in note.iter_attachments()] == ["small.png"]
    lines = body(note).splitlines()
    at = lines.index("Attachments: small.png (20 bytes), big.bin (500 bytes)")
    assert lines[at + 1].startswith("Not attached here, over the forwarding limit: big.bin (")


def test_requester_without_name_is_shown_once(desk_daemon, sink):
    send(desk_daemon.port, make_mail(sender="jane@customer.test"))
    text = body(notification_for(sink, "alice", event="new_ticket"))
    assert "New ticket MD-1 from jane@customer.test.\n" in text and "<jane@customer.test>" not in text


def test_unparseable_from_shows_the_envelope_sender(desk_daemon, sink):
    d = desk_daemon
    raw = (b"From: <<<not an address\r\nTo: support@example.test\r\nSubject: Broken header\r\n"
           b"Message-ID: <broken-from@customer.test>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n\r\nHello from a broken mailer.\r\n")
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as smtp:
        smtp.sendmail("jane@customer.test", ["support@example.test"], raw)
    text = body(notification_for(sink, "alice", event="new_ticket"))
    assert "New ticket MD-1 from jane@customer.test." in text and "---- jane@customer.test ----" in text
    t = show(d)
    assert t["requester"] == "jane@customer.test" and t["messages"][0]["from"] == "jane@customer.test"
    assert "in/customer from jane@customer.test, threaded by new: Broken header" in d.cli("tickets", "show", "MD-1").stdout.decode()


def test_follow_up_ticket_subject_drops_our_ref_and_status_words(desk_daemon, sink):
    d = desk_daemon
    send(d.port, make_mail(subject="Printer on fire"))
    send(d.port, agent_reply(notification_for(sink, "alice", event="new_ticket"), "alice", "#close"))
    closed = sink.wait_for(lambda m: to("jane@customer.test")(m) and "Closed:" in m["Subject"])[0]
    assert closed["Subject"] == "[MD-1] Closed: Printer on fire"
    send(d.port, make_mail(subject=f"Re: {closed['Subject']}", body="It is burning again.", in_reply_to=closed["Message-ID"]))
    ack = sink.wait_for(lambda m: to("jane@customer.test")(m) and "[MD-2]" in m["Subject"])[0]
    assert ack["Subject"] == "[MD-2] Re: Printer on fire"
    assert show(d, "MD-2")["subject"] == "Printer on fire" and show(d, "MD-2")["parent"] == "MD-1"


def test_bad_rating_mail_to_the_lead_carries_the_comment(desk_daemon, sink):
    d = desk_daemon
    send(d.port, make_mail())
    send(d.port, agent_reply(notification_for(sink, "alice", event="new_ticket"), "alice", "#team support\n#status resolved\nDone."))
    resolved = sink.wait_for(lambda m: to("jane@customer.test")(m) and "Resolved:" in m["Subject"])[0]
    send(d.port, make_mail(subject=f"Re: {resolved['Subject']}", body="1 nobody ever called me back",
                           in_reply_to=resolved["Message-ID"]))
    bad = notification_for(sink, "alice", event="bad_rating")
    assert "Their comment:\nnobody ever called me back" in body(bad)


def test_tickets_show_sla_after_the_first_response(tmp_path, clock):
    cfg = write_config(tmp_path, port=free_port(), shipped_config=True, files={"agents.toml": AGENTS, "rules.toml": ""})
    desk = build_desk(load_config(cfg), clock=clock)
    desk.store.upgrade()
    sync_directory(desk)
    cli = MaildeskProcess(cfg)
    try:
        deliver(desk, make_mail())
        before = cli.cli("tickets", "show", "MD-1").stdout.decode()
        assert "first response due 20" in before and "next response" not in before
        as_agent(desk, "alice", 1, "Please restart it.")
        answered = cli.cli("tickets", "show", "MD-1").stdout.decode()
        assert "first response at 20" in answered and "first response due" not in answered and "next response" not in answered
        reply = outbox_mails(desk, "reply")[-1]
        deliver(desk, make_mail(subject=f"Re: {reply['Subject']}", body="Did not help.", in_reply_to=reply["Message-ID"]))
        waiting = cli.cli("tickets", "show", "MD-1").stdout.decode()
        assert "next response due 20" in waiting and "first response at 20" in waiting
    finally:
        desk.store.dispose()
