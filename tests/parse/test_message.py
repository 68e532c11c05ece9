"""maildesk.parse.message: raw bytes -> InboundMessage.

Product requirements under test: every charset decodes exactly; HTML-only mail gets a
readable text body; broken MIME never crashes. Every message is written here (or built by
tests/support/mail.py); none is copied from real mail.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
from datetime import UTC, datetime

import pytest

import maildesk.parse.mimewalk as mimewalk_module
from maildesk.parse.message import Attachment, DeliveryReport, InboundMessage, clean_header, parse, parse_msgids
from tests.support.mail import attachment, encoded_word, encoded_words, forwarded, message, multipart, raw_part, text, tnef

SAMPLES = {  # charset: (subject, display name, body)
    "koi8-r": ("Принтер не печатает", "Иван Петров", "Здравствуйте!\nПринтер не печатает: ошибка E-042.\nЁжик, съешь ещё этих булок.\n"),
    "windows-1251": ("Не работает сканер — «Ошибка 5»", "Олена Коваленко", "Добрий день!\nСканер показує «Помилка 5» — що робити?\nДякую, Олена\n"),
    "iso-8859-7": ("Ο εκτυπωτής δεν λειτουργεί", "Γιώργος Παπαδόπουλος", "Καλημέρα σας,\nο εκτυπωτής στο γραφείο δεν τυπώνει.\nΕυχαριστώ!\n"),
    "windows-1255": ("המדפסת לא עובדת", "דנה כהן", "שלום רב,\nהמדפסת בקומה השנייה לא מדפיסה.\nתודה, דנה ₪\n"),
    "iso-2022-jp": ("プリンターが印刷できません", "山田 太郎", "お世話になっております。\nプリンターが印刷できません。\nよろしくお願いいたします。\n"),
    "utf-8": ("Grüße — naïve café 😀 中文", "Zoë Ødegård", "Hello 😀\nÜmlaut, ñ, 中文, עברית, Ελληνικά.\n"),
    "iso-8859-1": ("Grüße aus Köln, ça va?", "François Müller", "Guten Tag,\nder Drucker druckt nicht. Grüße aus Köln!\n½ Seite, © 2025\n"),
}
LEGACY_8BIT = ["koi8-r", "windows-1251", "iso-8859-7", "windows-1255", "iso-8859-1"]


def has_defect(msg: InboundMessage, fragment: str) -> bool:
    return any(fragment.lower() in d.lower() for d in msg.defects)


# 1. charsets ---------------------------------------------------------------------------


@pytest.mark.parametrize("cte", ["8bit", "quoted-printable", "base64"])
@pytest.mark.parametrize("charset", list(SAMPLES))
def test_body_subject_and_name_read_back_exactly(charset, cte):
    subject, name, body = SAMPLES[charset]
    raw = message(text(body, charset=charset, cte=cte), subject=encoded_word(subject, charset, "B"),
                  sender=f"{encoded_word(name, charset, 'Q')} <sender@example.com>")
    msg = parse(raw)
    assert msg.text == body.rstrip("\n")
    assert msg.subject == subject
    assert (msg.from_name, msg.from_addr) == (name, "sender@example.com")
    assert msg.charsets == (charset,)
    assert msg.html is None and msg.attachments == ()
    assert msg.defects == ()


@pytest.mark.parametrize("charset", list(SAMPLES))
@pytest.mark.parametrize("kind", ["B", "Q"])
def test_rfc2047_multiple_folded_words_split_inside_characters(charset, kind):
    subject = SAMPLES[charset][0]
    folded = encoded_words(subject, charset, kind, size=7)  # 7-byte pieces cut multi-byte characters
    assert folded.count("=?") > 1
    assert parse(message(subject=folded)).subject == subject


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("=?utf-8?B?0J/RgNC40LLQtdGC?=", "Привет", id="base64"),
    pytest.param("=?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=", "Grüße aus Köln", id="q-underscores"),
    pytest.param("=?utf-8?b?0J/RgNC40LLQtdGC?=", "Привет", id="lower-case-b"),
    pytest.param("Re: =?utf-8?Q?Caf=C3=A9?= [#123]", "Re: Café [#123]", id="literal-around-word"),
    pytest.param("=?utf-8?Q?a?= =?utf-8?Q?b?=", "ab", id="space-between-words-dropped"),
    pytest.param("=?utf-8?Q?a?=\r\n\t=?utf-8?Q?b?=", "ab", id="tab-fold-between-words"),
    pytest.param("=?utf-8?Q?a?==?utf-8?Q?b?=", "ab", id="adjacent-no-space"),
    pytest.param("=?utf-8?Q?a_?= b", "a  b", id="space-to-literal-kept"),
    pytest.param("Hello\r\n World", "Hello World", id="plain-folded"),
    pytest.param("=?koi8-r?B?8NLJ18XU?= =?windows-1251?B?7ODw?=", "Приветмар", id="two-charsets-adjacent"),
    pytest.param("=?utf-8*ru?Q?=D0=94=D0=B0?=", "Да", id="rfc2231-language"),
    pytest.param("=?utf-8?B?SGVsbG8?=", "Hello", id="missing-padding"),
    pytest.param("=?utf-8?Q?a=3Fb=3Dc?=", "a?b=c", id="q-question-mark"),
    pytest.param("=?x-unknown?Q?abc?=", "abc", id="unknown-charset"),
    pytest.param("=?utf-8?Q?=E2=82?=", "â‚", id="truncated-utf8-falls-back-to-cp1252"),
    pytest.param("=?ISO-2022-JP?B?GyRCJVclaiVzJT8hPBsoQg==?=", "プリンター", id="iso-2022-jp"),
    pytest.param("not =? an encoded word", "not =? an encoded word", id="not-a-word"),
    pytest.param("a\x00b\x07c", "a b c", id="control-characters"),
])
def test_clean_header(value, expected):
    assert clean_header(value) == expected


def test_raw_utf8_headers_as_swaks_sends_them():
    raw = ("From: Иван Петров <ivan@example.com>\nTo: support@example.org\nSubject: Принтер не печатает\n"
           "Date: Tue, 04 Mar 2025 10:15:00 +0300\n\nТекст без MIME-заголовков\n").encode()
    msg = parse(raw)
    assert msg.subject == "Принтер не печатает"
    assert (msg.from_name, msg.from_addr) == ("Иван Петров", "ivan@example.com")
    assert msg.text == "Текст без MIME-заголовков"
    assert msg.defects == ()


@pytest.mark.parametrize("charset", LEGACY_8BIT)
def test_raw_8bit_header_in_charset_declared_only_by_the_body(charset):
    subject, name, body = SAMPLES[charset]
    raw = message(text(body, charset=charset), subject=subject.encode(charset),
                  sender=name.encode(charset) + b" <sender@example.com>")
    msg = parse(raw)
    assert (msg.subject, msg.from_name, msg.text) == (subject, name, body.rstrip("\n"))
    assert msg.header("subject") == subject


def test_raw_iso_2022_jp_header_without_encoded_words():
    subject = SAMPLES["iso-2022-jp"][0]
    msg = parse(message(text("本文", charset="iso-2022-jp", cte="7bit"), subject=subject.encode("iso-2022-jp")))
    assert msg.subject == subject and msg.text == "本文"


def test_raw_8bit_header_without_any_charset_falls_back_to_cp1252():
    msg = parse(message(text("plain ascii", charset=None), subject="Grüße – “quoted”".encode("cp1252")))
    assert msg.subject == "Grüße – “quoted”"


def test_iso_8859_1_label_reads_windows_1252_punctuation():
    body = "It’s “broken” – again…"
    part = raw_part([("Content-Type", "text/plain; charset=iso-8859-1")], body.encode("cp1252"))
    assert parse(message(part)).text == body


# 2. HTML-only mail --------------------------------------------------------------------

HTML = """<!DOCTYPE html><html><head><title>Ticket title</title>
<style>p { color: red } .secret { display: none }</style>
<script>var leaked = "script contents";</script></head>
<body><p>Hello &amp; welcome, caf&eacute; costs 5&nbsp;&#8364; &lt;today&gt;.</p>
<p>First line<br>second line</p>
<ul><li>one</li><li>two</li></ul><ol><li>alpha</li></ol>
<p>See <a href="https://example.com/help">the help page</a>.</p>
<!-- a comment that must not show -->
<script>document.write("more script")</script></body></html>"""


def test_html_only_mail_gets_readable_text():
    msg = parse(message(text(HTML, subtype="html", cte="quoted-printable")))
    assert msg.html is not None and "<ul>" in msg.html
    lines = [line.strip() for line in msg.text.splitlines()]
    assert "Hello & welcome, café costs 5 € <today>." in lines
    assert lines.index("second line") == lines.index("First line") + 1
    assert "* one" in lines and "* two" in lines and "1. alpha" in lines
    assert "See the help page." in lines
    for leaked in ("<p>", "<br", "script contents", "more script", "color: red", "a comment", "&amp;", "Ticket title"):
        assert leaked not in msg.text
    assert "\n\n\n" not in msg.text


def test_html_charset_from_meta_tag():
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251"></head><body><p>Привет</p></body></html>'
    part = raw_part([("Content-Type", "text/html")], html.encode("cp1251"))
    assert parse(message(part)).text == "Привет"


def test_xhtml_with_xml_declaration_and_nul():
    html = '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><body><div>Да\x00</div></body></html>'
    msg = parse(message(text(html, subtype="html")))
    assert msg.text == "Да"
    assert has_defect(msg, "NUL")


class CountingGetText:
    def __init__(self, real):
        self.real, self.calls = real, 0

    def __call__(self, html):
        self.calls += 1
        return self.real(html)


@pytest.fixture
def get_text_calls(monkeypatch):
    counter = CountingGetText(mimewalk_module.get_text)
    monkeypatch.setattr(mimewalk_module, "get_text", counter)
    return counter


def test_inscriptis_not_run_when_there_is_plain_text(get_text_calls):
    msg = parse(message(multipart("alternative", text("Plain version\n"), text("<p>HTML version</p>", subtype="html"))))
    assert msg.text == "Plain version"
    assert msg.html == "<p>HTML version</p>"
    assert get_text_calls.calls == 0


def test_inscriptis_runs_once_for_html_only(get_text_calls):
    parse(message(multipart("alternative", text(" \n"), text("<p>Only HTML</p>", subtype="html"))))
    assert get_text_calls.calls == 1


def test_mixed_plain_then_html_only_footer():
    msg = parse(message(multipart("mixed", text("Body text\n"), text("<p>Footer <b>added</b></p>", subtype="html"))))
    assert msg.text == "Body text\n\nFooter added"


# 3. structures and attachments ---------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\r\n\x00\xff" * 10
PDF = b"%PDF-1.4\n" + random.Random(7).randbytes(5000) + b"\n%%EOF\n"


@pytest.mark.parametrize(("filename", "style", "expected"), [
    pytest.param("report.pdf", "plain", "report.pdf", id="plain"),
    pytest.param("Отчёт за март 2025.pdf", "rfc2231", "Отчёт за март 2025.pdf", id="rfc2231"),
    pytest.param("Ünïcödé naïve résumé – final version.pdf", "rfc2231-split", "Ünïcödé naïve résumé – final version.pdf",
                 id="rfc2231-continuations"),
    pytest.param("Übersicht März.xlsx", "rfc2047", "Übersicht März.xlsx", id="rfc2047-in-quotes"),
    pytest.param("Договор №5.docx", "plain", "Договор №5.docx", id="raw-utf8"),
    pytest.param("scan.tiff", "name", "scan.tiff", id="content-type-name-only"),
    pytest.param("../../etc/passwd", "plain", "passwd", id="path-traversal"),
    pytest.param("C:\\Users\\anna\\invoice.pdf", "plain", "invoice.pdf", id="windows-path"),
    pytest.param("evil\u202egnp.exe", "rfc2231", "evilgnp.exe", id="bidi-override"),
    pytest.param("..", "plain", "part-1.bin", id="only-dots"),
])
def test_attachment_filenames(filename, style, expected):
    msg = parse(message(multipart("mixed", text("see attached\n"), attachment(PDF, filename, style=style))))
    assert [a.filename for a in msg.attachments] == [expected]
    assert msg.attachments[0].data == PDF
    assert msg.text == "see attached"


@pytest.mark.parametrize("cte", ["base64", "quoted-printable", "8bit"])
@pytest.mark.parametrize("eol", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_attachment_bytes_read_back_exactly(cte, eol):
    data = PNG if cte != "8bit" else bytes(b for b in range(256) if b not in (10, 13)) * 4
    raw = message(multipart("mixed", text("photo\n"), attachment(data, "photo.png", "image/png", cte=cte), eol=eol), eol=eol)
    att = parse(raw).attachments[0]
    assert (att.filename, att.content_type, att.data, att.size) == ("photo.png", "image/png", data, len(data))
    assert att.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [300_000, 3_000_000])
@pytest.mark.parametrize("eol", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_big_base64_attachment_exact(size, eol):
    data = os.urandom(size)
    raw = message(multipart("mixed", text("big one\n"), attachment(data, "big.bin"), text("after\n"), eol=eol), eol=eol)
    msg = parse(raw)
    assert [a.data == data for a in msg.attachments] == [True]
    assert msg.text == "big one\n\nafter"


def test_big_base64_text_pasted_into_a_plain_body_is_kept():
    blob = base64.encodebytes(os.urandom(400_000)).decode()
    msg = parse(message(text(f"Log follows:\n{blob}end of log\n", charset="us-ascii", cte="7bit")))
    assert msg.text == f"Log follows:\n{blob}end of log"


def test_big_attachment_inside_forwarded_mail():
    data = os.urandom(500_000)
    inner = message(multipart("mixed", text("inner text\n"), attachment(data, "inner.bin")), subject="Inner")
    msg = parse(message(multipart("mixed", text("outer\n"), forwarded(inner))))
    again = parse(msg.attachments[0].data)
    assert again.subject == "Inner" and again.attachments[0].data == data


def test_base64_padded_line_by_line():
    body = b"".join(base64.b64encode(chunk) + b"\n" for chunk in (b"first ", b"second ", b"third"))
    part = raw_part([("Content-Type", "application/octet-stream"), ("Content-Disposition", "attachment; filename=x.bin"),
                     ("Content-Transfer-Encoding", "base64")], body)
    assert parse(message(part)).attachments[0].data == b"first second third"


def test_inline_image_in_related_html():
    html = '<html><body><p>Screenshot:</p><img src="cid:shot1@example.com"></body></html>'
    related = multipart("related", text(html, subtype="html"),
                        attachment(PNG, "shot.png", "image/png", disposition="inline", content_id="shot1@example.com"))
    msg = parse(message(multipart("alternative", text("Screenshot: [image]\n"), related)))
    assert msg.text == "Screenshot: [image]"
    assert "cid:shot1@example.com" in msg.html
    [img] = msg.attachments
    assert (img.content_id, img.inline, img.data, img.content_type) == ("shot1@example.com", True, PNG, "image/png")


def test_apple_mail_style_text_image_text():
    body = multipart("mixed", text("Here is a photo of the error:\n"), attachment(PNG, "IMG_0042.png", "image/png", disposition="inline"),
                     text("\nThanks!\nSent from my iPad\n"))
    msg = parse(message(multipart("alternative", body)))
    assert msg.text == "Here is a photo of the error:\n\n\nThanks!\nSent from my iPad"
    assert [a.filename for a in msg.attachments] == ["IMG_0042.png"]


def test_attachment_without_filename_gets_one():
    msg = parse(message(multipart("mixed", text("x\n"), attachment(PNG, None, "image/png"), attachment(b"{}", None, "application/json"))))
    assert [a.filename for a in msg.attachments] == ["part-1.png", "part-2.json"]


def test_text_attachment_is_not_body():
    log = "line 1\nline 2 ошибка\n"
    att = attachment(log.encode("koi8-r"), "app.log", "text/plain; charset=koi8-r", cte="quoted-printable")
    msg = parse(message(multipart("mixed", text("See the log.\n"), att)))
    assert msg.text == "See the log."
    assert msg.attachments[0].data == log.encode("koi8-r")


def test_forwarded_message_as_attachment():
    inner = message(text("Ошибка на втором этаже.\n", charset="koi8-r", cte="quoted-printable"), subject="=?koi8-r?B?8NLJztTF0g==?=",
                    message_id="<inner-1@example.net>", sender="Boris <boris@example.net>")
    msg = parse(message(multipart("mixed", text("FYI, see below.\n"), forwarded(inner)), subject="Fwd: Принтер"))
    assert msg.subject == "Fwd: Принтер"
    assert msg.text == "FYI, see below."
    [att] = msg.attachments
    assert (att.content_type, att.filename) == ("message/rfc822", "part-1.eml")
    again = parse(att.data)
    assert (again.subject, again.text, again.message_id, again.from_addr) == (
        "Принтер", "Ошибка на втором этаже.", "<inner-1@example.net>", "boris@example.net")


CALENDAR = """BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Printer repair\r\nDTSTART:20250305T090000Z\r
DESCRIPTION:Technician visit\\, floor 2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"""


def test_calendar_invite():
    invite = text(CALENDAR, subtype="calendar", params="method=REQUEST", cte="7bit")
    msg = parse(message(multipart("alternative", text("You are invited.\n"), text("<p>You are invited.</p>", subtype="html"), invite)))
    assert msg.text == "You are invited."
    [ics] = msg.attachments
    assert (ics.content_type, ics.filename) == ("text/calendar", "part-1.ics")
    assert ics.data.decode() == CALENDAR


# TNEF ----------------------------------------------------------------------------------

requires_tnef = pytest.mark.skipif(mimewalk_module.TNEF is None, reason="tnefparse (opens winmail.dat) is not installed")


def tnef_part(blob: bytes):
    return attachment(blob, "winmail.dat", "application/ms-tnef")


@requires_tnef
def test_tnef_attachments_replace_winmail_dat():
    files = (("Отчёт за май.pdf", PDF), ("photo.png", PNG))
    msg = parse(message(multipart("mixed", text("Please see the attachments.\n"), tnef_part(tnef("TNEF body", files)))))
    assert msg.text == "Please see the attachments."
    assert [(a.filename, a.content_type, a.data) for a in msg.attachments] == [
        ("Отчёт за май.pdf", "application/pdf", PDF), ("photo.png", "image/png", PNG)]
    assert msg.defects == ()


@requires_tnef
def test_tnef_body_is_the_text_when_the_mail_has_none():
    msg = parse(message(tnef_part(tnef("Grüße aus dem Büro\r\n", codepage=1252))))
    assert msg.text == "Grüße aus dem Büro"
    assert msg.attachments == ()


@requires_tnef
def test_tnef_html_body():
    msg = parse(message(tnef_part(tnef(html="<p>Nur <b>HTML</b> – ok</p>"))))
    assert msg.text.strip() == "Nur HTML – ok"


@requires_tnef
def test_broken_tnef_is_kept_as_attachment():
    msg = parse(message(multipart("mixed", text("x\n"), tnef_part(b"\x78\x9f\x3e\x22garbage"))))
    assert [a.filename for a in msg.attachments] == ["winmail.dat"]
    assert has_defect(msg, "winmail.dat")


def test_tnef_without_the_library_keeps_winmail_dat(monkeypatch):
    monkeypatch.setattr(mimewalk_module, "TNEF", None)
    msg = parse(message(multipart("mixed", text("x\n"), tnef_part(tnef("b", (("a.txt", b"a"),))))))
    assert [a.filename for a in msg.attachments] == ["winmail.dat"]
    assert has_defect(msg, "tnefparse is not installed")


# 4. broken input -----------------------------------------------------------------------

PARTS = (b"--XYZ\r\nContent-Type: text/plain\r\n\r\nHello there\r\n--XYZ\r\nContent-Type: application/pdf\r\n"
         b"Content-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         + base64.encodebytes(PDF[:300]).replace(b"\n", b"\r\n") + b"--XYZ--\r\n")
HEAD = b"From: a@example.com\r\nTo: support@example.org\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"


RECOVERED = {"text": "Hello there", "attachments": [("a.pdf", PDF[:300])], "defect": "boundary"}

# name: (raw message, what the parsed message must show); "defect" is a fragment of one entry in defects
BROKEN = {
    "missing boundary": (HEAD + b"Content-Type: multipart/mixed\r\n\r\n" + PARTS, RECOVERED),
    "wrong boundary": (HEAD + b'Content-Type: multipart/mixed; boundary="XYW"\r\n\r\n' + PARTS, RECOVERED),
    "missing boundary, no delimiter": (HEAD + b"Content-Type: multipart/mixed\r\n\r\njust text\r\n",
                                       {"text": "just text", "defect": "boundary"}),
    "unterminated multipart": (HEAD + b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n' + PARTS.replace(b"--XYZ--\r\n", b""),
                               {**RECOVERED, "defect": "CloseBoundaryNotFound"}),
    "empty multipart": (HEAD + b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n--XYZ--\r\n', {"text": "", "attachments": []}),
    "bad base64 text": (HEAD + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8gd29ybGQhx\r\n",
                        {"text": "Hello world!", "defect": "invalid base64"}),
    "base64 garbage": (HEAD + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@ \xff\xfe ###\r\n", {"text": ""}),
    "bad base64 attachment": (HEAD + b"Content-Type: image/png\r\nContent-Disposition: attachment; filename=x.png\r\n"
                              b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo*\r\nAAAADx\r\n",
                              {"attachments": [("x.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x03")], "defect": "invalid base64"}),
    "unknown charset, utf-8 bytes": (HEAD + b"Content-Type: text/plain; charset=x-unknown\r\n\r\n" + "Grüße".encode(),
                                     {"text": "Grüße", "defect": "'x-unknown' is unknown"}),
    "unknown charset, cp1252 bytes": (HEAD + b"Content-Type: text/plain; charset=x-unknown\r\n\r\n" + "Grüße".encode("cp1252"),
                                      {"text": "Grüße"}),
    "charset that is not a text codec": (HEAD + b"Content-Type: text/plain; charset=base64\r\n\r\nplain", {"text": "plain"}),
    "unicode_escape charset refused": (HEAD + b"Content-Type: text/plain; charset=unicode_escape\r\n\r\na\\u0041", {"text": "a\\u0041"}),
    "mislabelled utf-8": (HEAD + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "Grüße".encode("cp1252"),
                          {"text": "Grüße", "defect": "does not match"}),
    "header without colon": (b"From: a@example.com\r\nThis line has no colon\r\nSubject: still here\r\nTo: b@example.com\r\n\r\nbody\r\n",
                             {"subject": "still here", "text": "body", "to": (("", "b@example.com"),), "defect": "malformed header"}),
    "8-bit header name": (b"X-\xc3\xa4: value\r\nSubject: s\r\n\r\nbody", {"subject": "s", "text": "body", "defect": "malformed header"}),
    "binary garbage": (bytes(random.Random(1).randbytes(3000)), {}),
    "empty message": (b"", {"subject": "", "text": "", "from_addr": "", "message_id": None, "date": None, "defect": "empty"}),
    "only whitespace": (b"\r\n\r\n  \r\n", {"text": "", "defect": "empty"}),
    "only headers, no newline at end": (b"Subject: headers only\r\nFrom: a@example.com", {"subject": "headers only", "text": ""}),
    "NUL bytes": (HEAD.replace(b"broken", b"bro\x00ken") + b"\r\nbo\x00dy\x00\r\n", {"subject": "bro ken", "text": "body", "defect": "NUL"}),
    "extremely long header line": (HEAD.replace(b"broken", b"x" * 1_000_000) + b"\r\nbody\r\n", {"subject": "x" * 1_000_000, "text": "body"}),
    "no Message-ID": (HEAD + b"\r\nbody\r\n", {"message_id": None, "thread_ids": ()}),
    "unusable Message-ID": (HEAD + b"Message-ID: garbage\r\n\r\nbody\r\n", {"message_id": None, "defect": "Message-ID"}),
    "duplicate headers": (b"From: first@example.com\r\nFrom: second@example.com\r\nSubject: one\r\nSubject: two\r\n\r\nx",
                          {"from_addr": "first@example.com", "subject": "one", "defect": "duplicate subject"}),
    "garbage content type": (HEAD + b"Content-Type: garbage\r\n\r\nstill text\r\n", {"text": "still text"}),
    "unknown transfer encoding": (HEAD + b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-foo\r\n\r\nas is\r\n", {"text": "as is"}),
    "unbalanced quotes in content type": (HEAD + b'Content-Type: text/plain; charset="utf-8; format=flowed\r\n\r\nok\r\n', {"text": "ok"}),
    "broken rfc2231 continuations": (HEAD + b"Content-Type: application/pdf; name*1=a; name*=b\r\nContent-Disposition: attachment;"
                                     b" filename*0*=utf-8''%D0; filename*=x\r\n\r\ndata", {"text": ""}),
    "mbox From line": (b"From alice@example.com Tue Mar  4 10:15:00 2025\r\n" + HEAD + b"\r\nbody\r\n",
                       {"from_addr": "a@example.com", "subject": "broken", "text": "body"}),
    "bare CR line endings": (HEAD.replace(b"\r\n", b"\r") + b"\rline one\rline two\r", {"text": "line one\nline two"}),
    "rfc2231 filename in unknown charset": (
        HEAD + b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=x-bogus''na%FFme.bin\r\n\r\ndata",
        {"attachments": [("na\xffme.bin", b"data")]}),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_input_never_raises(name):
    raw, expected = BROKEN[name]
    msg = parse(raw, source="test")
    assert isinstance(msg, InboundMessage)
    assert msg.size == len(raw) and msg.source == "test"
    for key, value in expected.items():
        if key == "defect":
            assert has_defect(msg, value), msg.defects
        elif key == "attachments":
            assert [(a.filename, a.data) for a in msg.attachments] == value
        else:
            assert getattr(msg, key) == value, key
    for value in (msg.subject, msg.text, msg.from_name, *(v for vs in msg.headers.values() for v in vs)):
        assert "\x00" not in value
        value.encode("utf-8")  # no lone surrogates: every string can be stored


INSERTS = [b"\r\n", b"--", b"=?", b"?=", b":", b"\x00", b"=", b"\r\n\r\n", b"--x\r\n", b"\xff\xfe", b";filename*0*=utf-8''%D0",
           b"Content-Type: multipart/mixed; boundary=x\r\n", b"; charset=utf-7", b";filename*1=a;filename*=b"]


@pytest.mark.parametrize("seed", range(6))
def test_mutated_messages_never_raise(seed):
    """Seeded random damage (flipped bytes, cuts, inserted MIME syntax) to rich messages."""
    rng = random.Random(seed)
    seeds = [POSTFIX, EXCHANGE, message(multipart(
        "mixed", text("Grüße\n", charset="iso-8859-1", cte="quoted-printable"), attachment(PNG, "Отчёт.png", "image/png", style="rfc2231"),
        forwarded(message(multipart("alternative", text("inner"), text("<p>x</p>", subtype="html")))),
        attachment(tnef("b", (("a.txt", b"abc"),)), "winmail.dat", "application/ms-tnef")),
        subject=encoded_words("Принтер не печатает", "koi8-r", "B", 5))]
    for _ in range(60):
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            pos, op = rng.randrange(len(raw) + 1), rng.random()
            if op < 0.3:
                raw[pos:pos + 1] = bytes([rng.randrange(256)])
            elif op < 0.5:
                del raw[pos:pos + rng.randint(1, 200)]
            elif op < 0.8:
                raw[pos:pos] = rng.choice(INSERTS)
            else:
                del raw[pos:]
        msg = parse(bytes(raw))
        assert not [d for d in msg.defects if "unreadable" in d]
        for value in (msg.subject, msg.text, msg.from_name, *(a.filename for a in msg.attachments),
                      *(v for vs in msg.headers.values() for v in vs)):
            assert "\x00" not in value
            value.encode("utf-8")


def nested(depth: int, kind: str = "multipart") -> bytes:
    head, tail = b"", b""
    for i in range(depth):
        if kind == "multipart":
            head += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
            tail = b"\r\n--b%d--\r\n" % i + tail
        else:
            head += b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % i
    return b"Subject: deep\r\nMIME-Version: 1.0\r\n" + head + b"Content-Type: text/plain\r\n\r\ndeepest text" + tail


@pytest.mark.parametrize("kind", ["multipart", "message"])
@pytest.mark.parametrize(("depth", "max_depth"), [(500, 20), (500, 5), (5000, 20), (5000, 10_000), (19, 20)])
def test_deep_nesting_never_recurses(kind, depth, max_depth):
    msg = parse(nested(depth, kind), max_depth=max_depth)
    assert msg.subject == "deep"
    too_deep = depth + 1 > min(max_depth, 100)
    assert has_defect(msg, "nesting deeper than") == (too_deep and kind == "multipart")
    if kind == "multipart":
        assert (msg.text == "deepest text") == (not too_deep)


@pytest.mark.parametrize(("value", "expected"), [
    ("Tue, 04 Mar 2025 10:15:00 +0100", datetime(2025, 3, 4, 9, 15, tzinfo=UTC)),
    ("4 Mar 2025 10:15 GMT", datetime(2025, 3, 4, 10, 15, tzinfo=UTC)),
    ("Tue, 04 Mar 2025 10:15:00 -0000", datetime(2025, 3, 4, 10, 15, tzinfo=UTC)),
    ("Tue, 04 Mar 25 10:15:00 +0000", datetime(2025, 3, 4, 10, 15, tzinfo=UTC)),
    ("Tue,\r\n 04 Mar 2025 10:15:00 +0000 (UTC)", datetime(2025, 3, 4, 10, 15, tzinfo=UTC)),
    ("yesterday", None),
    ("Tue, 32 Foo 2025 99:99:99 +0000", None),
    ("Tue, 04 Mar 99999999 10:15:00 +0000", None),
    ("", None),
])
def test_dates(value, expected):
    msg = parse(message(date=value or None))
    assert msg.date == expected
    assert has_defect(msg, "Date") == (expected is None and bool(value))


@pytest.mark.parametrize(("header", "expected"), [
    pytest.param('"Doe, John" <JD@Example.COM>', [("Doe, John", "jd@example.com")], id="quoted-comma"),
    pytest.param("=?utf-8?Q?Doe=2C_John?= <jd@example.com>", [("Doe, John", "jd@example.com")], id="encoded-comma"),
    pytest.param('"=?utf-8?B?0JjQstCw0L0=?=" <ivan@example.com>', [("Иван", "ivan@example.com")], id="encoded-in-quotes"),
    pytest.param("bob@example.com (Bob Smith)", [("Bob Smith", "bob@example.com")], id="comment-name"),
    pytest.param("Ann (Sales) <ann@example.com>", [("Ann (Sales)", "ann@example.com")], id="comment-in-name"),
    pytest.param("Team: a@example.com, \"B, C\" <b@example.com>;, d@example.com",
                 [("", "a@example.com"), ("B, C", "b@example.com"), ("", "d@example.com")], id="group"),
    pytest.param("undisclosed-recipients:;", [], id="empty-group"),
    pytest.param("Пётр <petr@пример.рф>", [("Пётр", "petr@xn--e1afmkfd.xn--p1ai")], id="idn-utf8"),
    pytest.param("x@xn--e1afmkfd.xn--p1ai", [("", "x@xn--e1afmkfd.xn--p1ai")], id="idn-ascii"),
    pytest.param("a@example.com,\r\n b@example.com", [("", "a@example.com"), ("", "b@example.com")], id="folded"),
    pytest.param('"unterminated <u@example.com>', [("", "u@example.com")], id="unterminated-quote"),
    pytest.param("not an address", [], id="garbage"),
    pytest.param("<>", [], id="empty-angle"),
])
def test_addresses(header, expected):
    msg = parse(message(to=header))
    assert list(msg.to) == expected


def test_recipients_combines_envelope_to_and_cc():
    raw = message(to="A <a@example.com>, b@example.com", headers=(("Cc", "B@example.com, c@example.com"),))
    msg = parse(raw, rcpt_to=("Support@Example.org",), mail_from="bounce@example.com")
    assert msg.recipients == ("support@example.org", "a@example.com", "b@example.com", "c@example.com")
    assert msg.mail_from == "bounce@example.com" and msg.rcpt_to == ("support@example.org",)


def test_display_name_capped():
    msg = parse(message(sender="N" * 1000 + " <n@example.com>"))
    assert msg.from_addr == "n@example.com" and len(msg.from_name) == 200


# 5. threading headers ------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("<a@example.com>", ("<a@example.com>",)),
    ("<a@x.example>\r\n <b@x.example>\r\n\t<c@x.example>", ("<a@x.example>", "<b@x.example>", "<c@x.example>")),
    ("<a@x.example><b@x.example>", ("<a@x.example>", "<b@x.example>")),
    ("a@x.example", ("<a@x.example>",)),
    ("a@x.example b@y.example", ("<a@x.example>", "<b@y.example>")),
    ("<a@x.example> b@y.example", ("<a@x.example>",)),
    ("<a@x.example> (Bob's message of Tue)", ("<a@x.example>",)),
    ('Your message of "Tue, 4 Mar" <a@x.example>', ("<a@x.example>",)),
    ("<a@x.example> <a@x.example>", ("<a@x.example>",)),
    ("<no-at-sign.example>", ("<no-at-sign.example>",)),
    ("garbage words only", ()),
    ("<>", ()),
    ("<a @x.example>", ()),
    ("", ()),
])
def test_parse_msgids(value, expected):
    assert parse_msgids(value) == expected


def test_thread_ids_order():
    raw = message(headers=(("In-Reply-To", "<c@x.example>"),
                           ("References", "<a@x.example>\r\n <b@x.example>\r\n <c@x.example>")))
    msg = parse(raw)
    assert msg.in_reply_to == ("<c@x.example>",)
    assert msg.references == ("<a@x.example>", "<b@x.example>", "<c@x.example>")
    assert msg.thread_ids == ("<c@x.example>", "<b@x.example>", "<a@x.example>")
    assert msg.message_id == "<test-1@client.example.com>"


def test_message_id_without_brackets_and_garbage_threading_headers():
    raw = message(message_id="bare-id@client.example", headers=(("In-Reply-To", "(none)"), ("References", "\r\n ")))
    msg = parse(raw)
    assert msg.message_id == "<bare-id@client.example>"
    assert (msg.in_reply_to, msg.references, msg.thread_ids) == ((), (), ())


# 6. delivery status notifications ------------------------------------------------------

ORIGINAL = message(text("Your ticket [#1042] was updated.\n"), sender="Support <support@example.org>",
                   to="nobody@customer.example", subject="[#1042] Printer", message_id="<reply-42@support.example.org>")


def dsn(*parts, report_type="delivery-status", headers=(), sender="MAILER-DAEMON@mx.example.net (Mail Delivery System)"):
    return message(multipart("report", *parts, params=f"report-type={report_type}"), sender=sender,
                   to="support@example.org", subject="Undelivered Mail Returned to Sender",
                   message_id="<20250304101500.ABC123@mx.example.net>", headers=(("Auto-Submitted", "auto-replied"), *headers))


def status(*blocks: str):
    return raw_part([("Content-Type", "message/delivery-status")], "\r\n\r\n".join(blocks).encode() + b"\r\n")


POSTFIX = dsn(
    text("This is the mail system at host mx.example.net.\n\nYour message could not be delivered to\n"
         "<nobody@customer.example>: 550 5.1.1 User unknown\n", charset="us-ascii", cte="7bit"),
    status("Reporting-MTA: dns; mx.example.net\r\nX-Postfix-Queue-ID: ABC123\r\nX-Postfix-Sender: rfc822; support@example.org\r\n"
           "Arrival-Date: Tue,  4 Mar 2025 10:14:58 +0100 (CET)",
           "Final-Recipient: rfc822; nobody@customer.example\r\nOriginal-Recipient: rfc822;Nobody@Customer.example\r\n"
           "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.customer.example\r\n"
           "Diagnostic-Code: smtp; 550 5.1.1 <nobody@customer.example>: Recipient address\r\n    rejected: User unknown"),
    forwarded(ORIGINAL))

EXIM = dsn(
    text("Delivery to the following recipient failed permanently:\n\n  gone@customer.example\n", charset="us-ascii", cte="7bit"),
    status("Reporting-MTA: dns; relay.example.net",
           "Action: failed\r\nFinal-Recipient: rfc822;gone@customer.example\r\nStatus: 5.0.0\r\n"
           "Remote-MTA: dns; mx.customer.example\r\nDiagnostic-Code: smtp; 550 mailbox unavailable"),
    forwarded(b"Return-path: <support@example.org>\r\nMessage-ID:\r\n <reply-43@support.example.org>\r\nSubject: x\r\n",
              ctype="text/rfc822-headers"),
    sender="Mail Delivery System <Mailer-Daemon@relay.example.net>", headers=(("X-Failed-Recipients", "gone@customer.example"),))

EXCHANGE = dsn(
    multipart("alternative", text("Your message to left@customer.example couldn't be delivered.\n"),
              text("<html><body><p><b>Your message to left@customer.example couldn't be delivered.</b></p></body></html>", subtype="html")),
    status("Reporting-MTA: dns;AM0PR01MB0001.eurprd01.prod.mail.example\r\nReceived-From-MTA: dns;support.example.org",
           "Final-Recipient: rfc822;left@customer.example\r\nAction: failed\r\nStatus: 5.1.10\r\n"
           "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"),
    forwarded(b"Received: from support.example.org\r\nMessage-Id: <reply-44@support.example.org>\r\nSubject: [#1044] Scanner\r\n",
              ctype="text/rfc822-headers"),
    sender="postmaster@outlook.mail.example",
    headers=(("In-Reply-To", "<reply-44@support.example.org>"), ("References", "<reply-44@support.example.org>"),
             ("Thread-Topic", "[#1044] Scanner")))


@pytest.mark.parametrize(("raw", "expected", "text_start"), [
    pytest.param(POSTFIX, DeliveryReport("<reply-42@support.example.org>", ("nobody@customer.example",), "5.1.1", "failed",
                                         "550 5.1.1 <nobody@customer.example>: Recipient address rejected: User unknown"),
                 "This is the mail system", id="postfix"),
    pytest.param(EXIM, DeliveryReport("<reply-43@support.example.org>", ("gone@customer.example",), "5.0.0", "failed",
                                      "550 mailbox unavailable"), "Delivery to the following", id="exim"),
    pytest.param(EXCHANGE, DeliveryReport("<reply-44@support.example.org>", ("left@customer.example",), "5.1.10", "failed",
                                          "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"),
                 "Your message to left@", id="exchange"),
])
def test_delivery_reports(raw, expected, text_start):
    msg = parse(raw)
    assert msg.delivery_report == expected
    assert msg.delivery_report.permanent
    assert msg.text.startswith(text_start)


def test_postfix_bounce_keeps_original_as_attachment():
    msg = parse(POSTFIX)
    assert [a.content_type for a in msg.attachments] == ["message/rfc822"]
    assert parse(msg.attachments[0].data).message_id == "<reply-42@support.example.org>"


def test_delay_warning_is_not_permanent():
    raw = dsn(text("Delayed.\n"), status("Reporting-MTA: dns; mx.example.net",
                                         "Final-Recipient: rfc822; slow@customer.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
                                         "Diagnostic-Code: X-Postfix; connect to mx.customer.example: Connection timed out"),
              forwarded(ORIGINAL))
    report = parse(raw).delivery_report
    assert (report.action, report.status, report.permanent) == ("delayed", "4.4.1", False)
    assert report.diagnostic == "connect to mx.customer.example: Connection timed out"


def test_failed_recipient_wins_over_delayed_one():
    raw = dsn(text("Mixed.\n"), status("Reporting-MTA: dns; mx.example.net",
                                       "Final-Recipient: rfc822; slow@customer.example\r\nAction: delayed\r\nStatus: 4.4.1",
                                       "Final-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\nStatus: 5.1.1"))
    report = parse(raw).delivery_report
    assert (report.recipients, report.action, report.status) == (("slow@customer.example", "gone@customer.example"), "failed", "5.1.1")
    assert report.original_message_id is None


def test_exim_recipients_from_x_failed_recipients_header():
    raw = dsn(text("Failed.\n"), status("Reporting-MTA: dns; relay.example.net", "Action: failed\r\nStatus: 5.0.0"),
              headers=(("X-Failed-Recipients", "a@customer.example,\r\n B@customer.example"),))
    assert parse(raw).delivery_report.recipients == ("a@customer.example", "b@customer.example")


@pytest.mark.parametrize(("action", "status_code", "permanent"), [
    ("failed", "5.1.1", True), ("failed", "", True), ("delayed", "4.4.7", False), ("", "5.7.1", True),
    ("delivered", "2.0.0", False), ("relayed", "", False), ("", "", False),
])
def test_permanent(action, status_code, permanent):
    assert DeliveryReport(None, (), status_code, action, "").permanent is permanent


def test_read_receipt_is_not_a_delivery_report():
    mdn = raw_part([("Content-Type", "message/disposition-notification")], b"Reporting-UA: x\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n")
    msg = parse(dsn(text("Read.\n"), mdn, report_type="disposition-notification"))
    assert msg.delivery_report is None and msg.text == "Read."


def test_plain_mail_has_no_delivery_report():
    assert parse(message()).delivery_report is None


# 7. replies from common clients --------------------------------------------------------


def test_outlook_reply():
    plain = "Hallo,\n\nder Drucker geht wieder nicht.\n\nGrüße\nJürgen\n\nVon: Support <support@example.org>\nGesendet: Dienstag, 4. März 2025 10:15\n"
    html = "<html><body><p class=MsoNormal>Hallo,<o:p></o:p></p><p class=MsoNormal>der Drucker geht wieder nicht.<o:p></o:p></p></body></html>"
    raw = message(multipart("alternative", text(plain, charset="iso-8859-1", cte="quoted-printable"),
                            text(html, subtype="html", charset="iso-8859-1", cte="quoted-printable")),
                  sender="=?iso-8859-1?Q?J=FCrgen_M=FCller?= <Juergen.Mueller@kunde.example>",
                  subject="AW: [#1042] Drucker druckt nicht", message_id="<AM0PR01MB000123ABCD@AM0PR01MB0001.eurprd01.prod.mail.example>",
                  headers=(("Thread-Topic", "[#1042] Drucker druckt nicht"), ("Thread-Index", "AQHbjKxZ3x5GMu9yQkqPIHZbqE6XkA=="),
                           ("Accept-Language", "de-DE, en-US"), ("Content-Language", "de-DE"), ("X-MS-Has-Attach", ""),
                           ("X-MS-TNEF-Correlator", "")))
    msg = parse(raw)
    assert msg.subject == "AW: [#1042] Drucker druckt nicht"
    assert (msg.from_name, msg.from_addr) == ("Jürgen Müller", "juergen.mueller@kunde.example")
    assert msg.header("thread-topic") == "[#1042] Drucker druckt nicht"
    assert msg.header("thread-index") == "AQHbjKxZ3x5GMu9yQkqPIHZbqE6XkA=="
    assert msg.header("x-ms-has-attach") == ""
    assert (msg.in_reply_to, msg.references, msg.thread_ids) == ((), (), ())
    assert msg.text == plain.rstrip("\n")
    assert "MsoNormal" in msg.html


def test_gmail_reply():
    plain = "Thanks, that worked!\n\nOn Tue, 4 Mar 2025 at 10:15, Support <support@example.org> wrote:\n> Please restart the printer.\n>\n"
    raw = message(multipart("alternative", text(plain, cte="quoted-printable"),
                            text('<div dir="ltr">Thanks, that worked!</div><br><div class="gmail_quote">…</div>', subtype="html",
                                 cte="quoted-printable"), boundary="000000000000a1b2c3d4e5f6a7b8"),
                  sender=f"{encoded_word('Renée Dupont', 'UTF-8', 'B')} <renee.dupont@gmail.example>",
                  subject="Re: [#1042] Printer", message_id="<CAF=xYz-123+abc@mail.gmail.example>",
                  headers=(("In-Reply-To", "<reply-42@support.example.org>"),
                           ("References", "<new-1042@support.example.org>\r\n <reply-42@support.example.org>")))
    msg = parse(raw)
    assert (msg.subject, msg.from_name, msg.message_id) == ("Re: [#1042] Printer", "Renée Dupont", "<CAF=xYz-123+abc@mail.gmail.example>")
    assert msg.thread_ids == ("<reply-42@support.example.org>", "<new-1042@support.example.org>")
    assert msg.text == plain.rstrip("\n")


def test_apple_mail_reply():
    plain = "Hi,\n\nit’s still broken. Photo attached.\n\n> On 4. Mar 2025, at 10:15, Support <support@example.org> wrote:\n> \n> Please restart.\n"
    raw = message(multipart("mixed", text(plain, cte="quoted-printable"), attachment(PNG, "IMG_0001.png", "image/png", disposition="inline"),
                            boundary="Apple-Mail=_0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9"),
                  sender="Kai Nakamura <kai@icloud.example>", subject="Re: [#1042] Printer",
                  message_id="<6C1F2E3D-4A5B-4C6D-8E7F-0123456789AB@icloud.example>",
                  headers=(("In-Reply-To", "<reply-42@support.example.org>"), ("References", "<reply-42@support.example.org>"),
                           ("X-Mailer", "Apple Mail (2.3731.500.231)")), mime=False)
    raw = raw.replace(b"Content-Type: multipart/mixed", b"Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3731.500.231\\))\r\nContent-Type: multipart/mixed")
    msg = parse(raw)
    assert msg.header("mime-version").startswith("1.0 (Mac OS X Mail")
    assert msg.text == plain.rstrip("\n")
    assert msg.thread_ids == ("<reply-42@support.example.org>",)
    assert [(a.filename, a.inline) for a in msg.attachments] == [("IMG_0001.png", True)]


def test_thunderbird_reply_with_format_flowed():
    flowed = ("Hello, \r\nthis paragraph was wrapped by the client \r\nat a soft line break.\r\n\r\n"
              "On 04.03.25 10:15, Support wrote:\r\n> Please restart the printer \r\n> and try again.\r\n>> older quote\r\n"
              " From the start, space-stuffed.\r\n-- \r\nTom\r\n")
    part = raw_part([("Content-Type", "text/plain; charset=UTF-8; format=flowed"), ("Content-Transfer-Encoding", "8bit")], flowed.encode())
    raw = message(part, sender="Tom Weber <tom@example.net>", subject="Re: [#1042] Printer",
                  headers=(("User-Agent", "Mozilla Thunderbird"), ("Content-Language", "en-US"), ("In-Reply-To", "<reply-42@support.example.org>"),
                           ("References", "<new-1042@support.example.org>\r\n <reply-42@support.example.org>")))
    msg = parse(raw)
    assert msg.text == ("Hello, this paragraph was wrapped by the client at a soft line break.\n\nOn 04.03.25 10:15, Support wrote:\n"
                        "> Please restart the printer and try again.\n>> older quote\nFrom the start, space-stuffed.\n-- \nTom")
    assert msg.thread_ids == ("<reply-42@support.example.org>", "<new-1042@support.example.org>")


def test_format_flowed_delsp():
    part = raw_part([("Content-Type", "text/plain; charset=utf-8; format=flowed; delsp=yes")], b"Lang \r\nwort\r\n")
    assert parse(message(part)).text == "Langwort"


# misc ----------------------------------------------------------------------------------


def test_headers_dict_and_header_method():
    msg = parse(message(headers=(("X-Custom", "=?utf-8?Q?Gr=C3=BC=C3=9Fe?="), ("Received", "a"), ("Received", "b"))))
    assert msg.header("X-CUSTOM") == "Grüße"
    assert msg.headers["received"] == ("a", "b")
    assert msg.header("missing", "default") == "default"


def test_attachment_repr_hides_data():
    assert "data" not in repr(Attachment("a.bin", "application/octet-stream", b"secret"))


def test_str_input_accepted():
    assert parse("Subject: str input\n\nbody").subject == "str input"
