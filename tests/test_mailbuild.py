"""Outgoing mail: nothing from an incoming message can inject a header; HTML autoescapes."""

from __future__ import annotations

from email import message_from_bytes, policy

from maildesk.mailbuild import Outgoing, compose
from maildesk.render import Renderer


def test_crlf_in_values_cannot_add_headers():
    evil = "Hello\r\nBcc: victim@example.com\r\nX-Evil: 1"
    out = Outgoing(from_addr="support@example.test", from_name="Support\r\nX-Injected: yes",
                   to=[("Jane\nBcc: x@y.z", "jane@customer.test")], subject=evil, text="body",
                   in_reply_to="<a@b>\r\nX-Bad: 1", references=("<c@d>\nX-Bad2: 1",), thread_topic=evil)
    mail, mid = compose(out)
    raw = mail.as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    for name in ("Bcc", "X-Evil", "X-Injected", "X-Bad", "X-Bad2"):
        assert parsed[name] is None, name
    assert parsed["Message-ID"] == mid and mid.endswith("@example.test>")
    assert parsed["To"].addresses[0].addr_spec == "jane@customer.test"


def test_html_part_autoescapes_message_values():
    r = Renderer()
    rendered = r.render("ack", ref="MD-1", base_subject="<script>alert(1)</script> & co", support_name="S",
                        requester_name="<b>Eve</b>", promise=None, ticket=None)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "<b>Eve</b>" not in rendered.html
    assert "<script>alert(1)</script>" in rendered.text  # the text part is plain text, not markup
    assert rendered.subject == "[MD-1] Re: <script>alert(1)</script> & co"


def test_operator_template_override(tmp_path):
    (tmp_path / "ack.txt.j2").write_text("{% block subject %}Ticket {{ ref }}{% endblock %}{% block body %}Custom {{ ref }}{% endblock %}")
    rendered = Renderer(tmp_path).render("ack", ref="MD-9", base_subject="x", support_name="S", requester_name="",
                                         promise=None, ticket=None)
    assert rendered.subject == "Ticket MD-9" and rendered.text.strip() == "Custom MD-9"
    assert "Custom MD-9" in rendered.html
