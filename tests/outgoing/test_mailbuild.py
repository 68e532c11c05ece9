"""Outgoing mail: nothing from an incoming message can inject a header; HTML autoescapes."""

from __future__ import annotations

from email import message_from_bytes, message_from_string, policy
from types import SimpleNamespace

import pytest

from maildesk.outgoing.mailbuild import Outgoing, build_body, compose, needs_smtputf8, wire_address
from maildesk.outgoing.render import Renderer


def test_crlf_in_values_cannot_add_headers():
    evil = "Hello\r\nBcc: victim@example.com\r\nX-Evil: 1"
    out = Outgoing(from_addr="support@example.test", from_name="Support\r\nX-Injected: yes",
                   to=[("Jane\nBcc: x@y.z", "jane@customer.test")], subject=evil, text="body",
                   in_reply_to="<a@b>\r\nX-Bad: 1", references=("<c@d>\nX-Bad2: 1",), thread_topic=evil)
    raw, mid = compose(out)
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


def _parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


@pytest.mark.parametrize(("text", "cte"), [
    ("Plain ASCII text.\nSecond line.\n", "7bit"),
    ("Grüße aus Köln, wir melden uns.\n" * 3, "quoted-printable"),
    ("Принтер не печатает, помогите пожалуйста.\n" * 3, "base64"),
    ("x" * 1200 + "\n", "quoted-printable"),  # ASCII, but a line too long for 7bit
])
def test_body_encoding_is_chosen_by_content_and_decodes_back(text, cte):
    html = "<p>" + text.replace("\n", "<br>") + "</p>"
    raw, _ = compose(Outgoing(from_addr="support@example.test", from_name="S", to=[("", "a@b.test")], subject="s",
                              text=text, html=html))
    msg = _parse(raw)
    assert msg.get_content_type() == "multipart/alternative" and msg["MIME-Version"] == "1.0"
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain["Content-Transfer-Encoding"] == cte
    assert plain.get_content().replace("\r\n", "\n") == text and rich.get_content().strip() == html
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF everywhere, no bare LF


def test_non_ascii_headers_fold_and_decode_back():
    subject = "[MD-7] Re: Принтер не печатает после обновления драйвера, срочно нужна помощь отдела"
    refs = tuple(f"<{i:04d}.long-message-identifier@mail.customer.test>" for i in range(12))
    raw, _ = compose(Outgoing(from_addr="support@example.test", from_name="Служба поддержки", subject=subject,
                              to=[("Jürgen Müller", "j@customer.test"), ("Ann, \"Q\"", "ann@customer.test")],
                              text="t", references=refs, in_reply_to=refs[-1], thread_topic=subject))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"From"))
    msg = _parse(raw)
    assert msg["Subject"] == subject and msg["Thread-Topic"] == subject
    assert [a.display_name for a in msg["To"].addresses] == ["Jürgen Müller", 'Ann, "Q"']
    assert msg["From"].addresses[0].display_name == "Служба поддержки"
    assert msg["References"].split() == list(refs[-20:])


def test_attachments_keep_bytes_and_names():
    files = (SimpleNamespace(filename="счёт.pdf", content_type="application/pdf", data=bytes(range(256)) * 50),
             SimpleNamespace(filename='a "quoted" name.txt', content_type="text/plain\r\nX-Evil: 1", data=b"hello\n"))
    raw, _ = compose(Outgoing(from_addr="support@example.test", from_name="S", to=[("", "a@b.test")], subject="s",
                              text="see attached", html="<p>see attached</p>", attachments=files))
    msg = _parse(raw)
    assert msg.get_content_type() == "multipart/mixed" and msg["X-Evil"] is None
    atts = list(msg.iter_attachments())
    assert [a.get_filename() for a in atts] == ["счёт.pdf", 'a "quoted" name.txt']
    assert atts[0].get_content() == files[0].data and atts[1].get_payload(decode=True) == b"hello\n"
    assert msg.get_body(("plain",)).get_content().strip() == "see attached"


def test_one_body_shared_by_several_copies():
    body = build_body("shared text", "<p>shared</p>")
    raws = [compose(Outgoing(from_addr="support@example.test", from_name="S", to=[("", f"{n}@example.test")],
                             subject="s", text="ignored"), body=body) for n in ("alice", "bob")]
    (a, id_a), (b, id_b) = raws
    assert id_a != id_b and a.split(b"\r\n\r\n", 1)[1] == b.split(b"\r\n\r\n", 1)[1]
    assert _parse(b).get_body(("plain",)).get_content().strip() == "shared text"


def test_internationalized_addresses_are_written_as_utf8_with_encoded_display_names():
    """RFC 6532: a non-ASCII local part goes into the header as raw UTF-8 (it cannot be
    RFC 2047 encoded), its display name stays RFC 2047; a non-ASCII domain alone becomes its
    IDNA form, so that mail needs no SMTPUTF8."""
    raw, _ = compose(Outgoing(from_addr="support@example.test", from_name="Support", subject="Hej",
                              to=[("Søren Ørsted, ApS", "søren@example.dk")], cc=[("", "mette@bücher.example")],
                              text="t"))
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    to_line = next(line for line in head.split("\r\n") if line.startswith("To:"))
    assert to_line == "To: =?utf-8?b?U8O4cmVuIMOYcnN0ZWQsIEFwUw==?= <søren@example.dk>"
    assert "Cc: mette@xn--bcher-kva.example" in head.split("\r\n")
    msg = message_from_string(head + "\r\n\r\n", policy=policy.SMTPUTF8)
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [("Søren Ørsted, ApS", "søren@example.dk")]
    assert needs_smtputf8(["support+b1@example.test", "søren@example.dk"], raw) == ["søren@example.dk"]
    assert needs_smtputf8(["support+b1@example.test"], raw) == ["its headers"]


@pytest.mark.parametrize(("address", "wire"), [
    ("jane@customer.test", "jane@customer.test"),
    ("jan@bücher.example", "jan@xn--bcher-kva.example"),
    ("søren@example.dk", "søren@example.dk"),
    ("søren@bücher.example", "søren@xn--bcher-kva.example"),
    ("not-an-address", "not-an-address"),
])
def test_wire_address(address, wire):
    assert wire_address(address) == wire


def test_ascii_only_mail_needs_no_smtputf8():
    raw, _ = compose(Outgoing(from_addr="support@example.test", from_name="Служба", to=[("Jürgen", "j@bücher.example")],
                              subject="Привет", text="Grüße"))
    assert needs_smtputf8(["support+b1@example.test", wire_address("j@bücher.example")], raw) == []


def test_utf8_message_ids_only_in_a_mail_that_needs_smtputf8_anyway():
    ids = ("<a1@customer.test>", "<b1@bücher.example>")
    ascii_raw, _ = compose(Outgoing(from_addr="support@example.test", from_name="S", to=[("Jan", "jan@bücher.example")],
                                    subject="s", text="t", in_reply_to=ids[1], references=ids))
    head = ascii_raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"References: <a1@customer.test>\r\n" in head and b"In-Reply-To" not in head
    utf8_raw, _ = compose(Outgoing(from_addr="support@example.test", from_name="S", to=[("", "søren@example.dk")],
                                   subject="s", text="t", in_reply_to=ids[1], references=ids))
    head = utf8_raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "In-Reply-To: <b1@bücher.example>" in head and "References: <a1@customer.test> <b1@bücher.example>" in head
