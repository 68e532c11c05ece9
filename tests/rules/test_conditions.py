"""Each condition, its combinators, cost ordering and short-circuiting."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from maildesk.rules import RuleContext, evaluate
from maildesk.rules import facts as facts_module
from maildesk.rules.args import p_bool
from maildesk.rules.conditions import REGISTRY, condition
from maildesk.rules.language import detect_language
from maildesk.rules.tree import Cond
from tests.rules.helpers import MONDAY_10_BERLIN, directory, mail, ruleset

DIRECTORY = directory()
PDF = ("report.pdf", "application/pdf", b"%PDF-1.4 test")
EXE = ("Setup.EXE", "application/octet-stream", b"MZ test")
PNG = ("shot.png", "image/png", b"\x89PNG test")


def matches(when: str, msg, *, now: datetime = MONDAY_10_BERLIN, known: bool = False, hours: str = "", language=None) -> bool:
    rs = ruleset(f"{hours}\n[[rule]]\nname = \"r\"\nwhen = {when}\nthen = {{ tags = [\"hit\"] }}\n", DIRECTORY)
    ctx = RuleContext(directory=DIRECTORY, known_contact=known, language=language)
    return evaluate(rs, msg, ctx, now).tags == ("hit",)


CASES = [
    # sender / sender_domain
    ('{ sender = "jo@customer.example.org" }', {}, True),
    ('{ sender = "JO@Customer.Example.ORG" }', {}, True),
    ('{ sender = "*@customer.example.org" }', {}, True),
    ('{ sender = ["x@y.example", "*@other.example"] }', {}, False),
    ('{ sender = "jo@customer.example.org" }', {"sender": "", "mail_from": "jo@customer.example.org"}, True),  # envelope fallback
    ('{ sender_domain = "customer.example.org" }', {}, True),
    ('{ sender_domain = "example.org" }', {}, True),  # parent domain covers subdomains
    ('{ sender_domain = "mer.example.org" }', {}, False),  # a suffix is not a parent domain
    ('{ sender_domain = ["a.example", "@customer.example.org"] }', {}, True),
    # recipient: To, Cc, envelope; plus addresses count as the base address
    ('{ recipient = "support@example.test" }', {}, True),
    ('{ recipient = "billing@example.test" }', {}, False),
    ('{ recipient = "billing@example.test" }', {"cc": "billing@example.test"}, True),
    ('{ recipient = "billing@example.test" }', {"rcpt_to": ("billing@example.test",)}, True),
    ('{ recipient = "billing@example.test" }', {"to": "Billing <billing+ref42@example.test>"}, True),
    ('{ recipient = "billing+*@example.test" }', {"to": "billing+ref42@example.test"}, True),
    # subject
    ('{ subject_contains = "ACCOUNT" }', {}, True),
    ('{ subject_contains = ["outage", "account"] }', {}, True),
    ('{ subject_contains = "outage" }', {}, False),
    ('{ subject_words = ["down"] }', {"subject": "Server down!"}, True),
    ('{ subject_words = ["down"] }', {"subject": "Download fails"}, False),  # whole words only
    ('{ subject_words = ["Störung"] }', {"subject": "STÖRUNG im Netz"}, True),
    ('{ subject_matches = \'^re:\\s*order\\s+#\\d+\' }', {"subject": "RE: Order #123"}, True),
    ('{ subject_matches = \'order\\s+#\\d+$\' }', {"subject": "Order #12a"}, False),
    ('{ subject_matches = ["^x", "account$"] }', {}, True),
    # body (text of HTML-only mail too)
    ('{ body_contains = "question" }', {}, True),
    ('{ body_contains = "refund" }', {}, False),
    ('{ body_words = ["there"] }', {"body": "", "html": "<p>Hello <b>there</b></p>"}, True),
    ('{ body_matches = \'order\\s+\\d{4}\' }', {"body": "see ORDER  1234 please"}, True),
    # headers
    ('{ header = { name = "X-Priority", exists = true } }', {"headers": {"X-Priority": "1"}}, True),
    ('{ header = { name = "X-Priority", exists = true } }', {}, False),
    ('{ header = { name = "X-Priority", exists = false } }', {}, True),
    ('{ header = { name = "x-spam-flag", equals = "yes" } }', {"headers": {"X-Spam-Flag": " YES "}}, True),
    ('{ header = { name = "X-Spam-Flag", equals = "yes" } }', {"headers": {"X-Spam-Flag": "YES, really"}}, False),
    ('{ header = { name = "User-Agent", contains = "thunderbird" } }', {"headers": {"User-Agent": "Mozilla Thunderbird/128"}}, True),
    ('{ header = { name = "X-Score", matches = "^[5-9]" } }', {"headers": {"X-Score": "7.2"}}, True),
    ('{ header = { name = "X-Score", matches = "^[5-9]" } }', {"headers": {"X-Score": "1.0"}}, False),
    ('{ header = [ { name = "X-A", exists = true }, { name = "X-B", equals = "2" } ] }', {"headers": {"X-A": "1", "X-B": "2"}}, True),
    ('{ header = [ { name = "X-A", exists = true }, { name = "X-B", equals = "2" } ] }', {"headers": {"X-A": "1", "X-B": "3"}}, False),
    # attachments
    ("{ has_attachments = true }", {"attachments": (PDF,)}, True),
    ("{ has_attachments = true }", {}, False),
    ("{ has_attachments = false }", {}, True),
    ('{ attachment_type = "application/pdf" }', {"attachments": (PNG, PDF)}, True),
    ('{ attachment_type = "image/*" }', {"attachments": (PNG,)}, True),
    ('{ attachment_type = "image/*" }', {"attachments": (PDF,)}, False),
    ('{ attachment_name = "*.exe" }', {"attachments": (EXE,)}, True),
    ('{ attachment_name = ["*.js", "*.scr"] }', {"attachments": (EXE,)}, False),
    # how it came in
    ('{ queue = "billing" }', {"queue": "billing"}, True),
    ('{ queue = "billing" }', {"queue": None}, False),
    ('{ source = "imap:*" }', {"source": "imap:support"}, True),
    ('{ source = "imap:*" }', {"source": "smtp"}, False),
    # directory
    ("{ vip = true }", {"sender": "ceo@bigcorp.example.com"}, True),
    ("{ vip = true }", {}, False),
    ("{ vip = false }", {}, True),
    ("{ from_agent = true }", {"sender": "Alice <alice.admin@example.test>"}, True),
    ("{ from_agent = true }", {}, False),
    # charsets (aliases are one charset)
    ('{ charset = "koi8-r" }', {"body": "Привет, помогите", "charset": "koi8-r"}, True),
    ('{ charset = "cp1251" }', {"body": "Привет", "charset": "windows-1251"}, True),
    ('{ charset = "koi8-r" }', {}, False),
    # combinators
    ('{ any = [ { subject_contains = "nope" }, { sender_domain = "customer.example.org" } ] }', {}, True),
    ('{ any = [ { subject_contains = "nope" }, { sender_domain = "nope.example" } ] }', {}, False),
    ('{ all = [ { subject_contains = "account" }, { body_contains = "question" } ] }', {}, True),
    ('{ all = [ { subject_contains = "account" }, { body_contains = "nope" } ] }', {}, False),
    ('{ not = { subject_contains = "account" } }', {}, False),
    ('{ not = { any = [ { vip = true }, { from_agent = true } ] } }', {}, True),
    ('{ subject_contains = "account", not = { sender_domain = "customer.example.org" } }', {}, False),
    ('{ any = [ { all = [ { vip = true }, { subject_contains = "x" } ] }, { not = { queue = "q" } } ] }', {}, True),
    ("{}", {}, True),
]


@pytest.mark.parametrize(("when", "kwargs", "expected"), CASES)
def test_condition(when, kwargs, expected):
    assert matches(when, mail(**kwargs)) is expected


def test_every_registered_condition_is_covered_by_a_test():
    tested = set(re.findall(r"(\w+) =", " ".join(c[0] for c in CASES)))
    tested |= {"known_contact", "language", "business_hours", "outside_business_hours"}  # tested below
    assert set(REGISTRY) <= tested


@pytest.mark.parametrize(("known", "want", "expected"), [(True, "true", True), (False, "true", False), (False, "false", True)])
def test_known_contact_comes_from_the_context(known, want, expected):
    assert matches(f"{{ known_contact = {want} }}", mail(), known=known) is expected


HOURS = """
[hours.office]
timezone = "Europe/Berlin"
mon-fri = "09:00-17:00"
holidays = ["12-25", 2026-03-03]
"""


@pytest.mark.parametrize(("when", "now", "expected"), [
    ('{ business_hours = "office" }', datetime(2026, 3, 2, 9, 0, tzinfo=UTC), True),  # Mon 10:00 Berlin
    ('{ business_hours = "office" }', datetime(2026, 3, 2, 16, 0, tzinfo=UTC), False),  # Mon 17:00: end excluded
    ('{ business_hours = "office" }', datetime(2026, 3, 3, 9, 0, tzinfo=UTC), False),  # a dated holiday
    ('{ business_hours = "office" }', datetime(2026, 12, 25, 9, 0, tzinfo=UTC), False),  # a yearly holiday (Friday)
    ('{ business_hours = "office" }', datetime(2026, 3, 7, 9, 0, tzinfo=UTC), False),  # Saturday
    ('{ business_hours = "office" }', datetime(2026, 7, 6, 7, 30, tzinfo=UTC), True),  # 09:30 summer time (UTC+2)
    ('{ outside_business_hours = "office" }', datetime(2026, 3, 7, 9, 0, tzinfo=UTC), True),
    ('{ outside_business_hours = "office" }', datetime(2026, 3, 2, 9, 0, tzinfo=UTC), False),
    ('{ business_hours = "team:tier1" }', datetime(2026, 3, 2, 7, 30, tzinfo=UTC), True),  # tier1 opens 08:00 Berlin
    ('{ business_hours = "office" }', datetime(2026, 3, 2, 7, 30, tzinfo=UTC), False),  # the office at 08:30 Berlin
])
def test_business_hours(when, now, expected):
    assert matches(when, mail(), now=now, hours=HOURS) is expected


def test_hours_handed_in_from_elsewhere_can_be_named():
    from maildesk.sla.businesshours import BusinessHours

    rs = ruleset('[[rule]]\nname = "r"\nwhen = { business_hours = "sla_office" }\nthen = { tags = ["in"] }\n', DIRECTORY,
                 hours={"sla_office": BusinessHours.parse("UTC", {"mon": "00:00-24:00"})})
    assert evaluate(rs, mail(), RuleContext(directory=DIRECTORY), datetime(2026, 3, 2, 23, tzinfo=UTC)).tags == ("in",)
    assert evaluate(rs, mail(), RuleContext(directory=DIRECTORY), datetime(2026, 3, 3, 1, tzinfo=UTC)).tags == ()


GERMAN = ("Guten Tag, seit heute Morgen können wir uns nicht mehr anmelden. Die Fehlermeldung erscheint bei "
          "allen Mitarbeitern. Bitte melden Sie sich so schnell wie möglich bei uns.\n")
ENGLISH = ("Good morning, since this morning none of our staff can log in. The error shows up for everybody "
           "in the office. Please get back to us as soon as you can.\n")
SPANISH = "Buenos días, desde esta mañana no podemos entrar en el portal. Por favor, ayúdennos lo antes posible.\n"


@pytest.mark.parametrize(("body", "when", "expected"), [
    (GERMAN, '{ language = "de" }', True),
    (ENGLISH, '{ language = "de" }', False),
    (ENGLISH, '{ language = ["en", "de"] }', True),
    (SPANISH, '{ language = "es" }', True),
    ("> " + ENGLISH.replace("\n", "\n> ") + "\n" + GERMAN, '{ language = "de" }', True),  # quoted text is ignored
])
def test_language_is_detected(body, when, expected):
    assert matches(when, mail(subject="Anmeldung", body=body)) is expected


def test_language_falls_back_to_content_language_for_short_text():
    assert detect_language("Hi", "ok", "de-AT, en") == "de"
    assert detect_language("", "", "") is None


def test_language_from_context_is_used_without_detection(monkeypatch):
    monkeypatch.setattr(facts_module, "detect_language", lambda *a: pytest.fail("detection must not run"))
    assert matches('{ language = "fr" }', mail(body=ENGLISH), language="fr")


def test_language_prefix_matches_regional_code():
    assert matches('{ language = "zh" }', mail(), language="zh-cn")


def test_cheap_conditions_run_first_and_short_circuit(monkeypatch):
    calls = []
    monkeypatch.setattr(facts_module, "detect_language", lambda *a: calls.append(a) or "de")
    # language is written first but costs most: the failing recipient test stops the rule before it
    assert not matches('{ language = "de", body_matches = "x", recipient = "sales@example.test" }', mail(body=GERMAN))
    assert calls == []
    assert matches('{ language = "de", recipient = "support@example.test" }', mail(body=GERMAN))
    assert len(calls) == 1


def test_trace_lists_tests_in_cost_order_and_stops_at_first_failure():
    rs = ruleset('[[rule]]\nname = "r"\nwhen = { body_contains = "question", subject_contains = "nope", queue = "q", '
                 'sender_domain = "customer.example.org" }\nthen = { tags = ["x"] }\n', DIRECTORY)
    d = evaluate(rs, mail(queue="q"), RuleContext(directory=DIRECTORY), MONDAY_10_BERLIN)
    reasons = d.hits[0].reasons
    assert [r.split()[0] for r in reasons] == ["yes", "yes", "no"]
    assert "came through queue" in reasons[0] and "sender domain" in reasons[1] and "subject contains" in reasons[2]
    assert not any("body" in r for r in reasons)  # never evaluated


def test_any_stops_at_first_match_and_reports_it():
    rs = ruleset('[[rule]]\nname = "r"\nwhen = { any = [ { body_contains = "question" }, { queue = "nope" }, '
                 '{ subject_words = ["account"] } ] }\nthen = { tags = ["x"] }\n', DIRECTORY)
    reasons = evaluate(rs, mail(), RuleContext(directory=DIRECTORY), MONDAY_10_BERLIN).hits[0].reasons
    assert reasons[0].startswith("yes  any of")
    assert [r.strip().split()[0] for r in reasons[1:]] == ["no", "yes"]
    assert "[account]" in reasons[2]  # the evidence: the word found
    assert len(reasons) == 3  # the body was never searched


def test_regexes_are_compiled_once_at_load():
    rs = ruleset('[[rule]]\nname = "r"\nwhen = { subject_matches = "a+b", body_words = ["x"] }\nthen = { tags = ["x"] }\n', DIRECTORY)
    leaves = [c for c in rs.rules[0].when.children if isinstance(c, Cond)]
    assert all(isinstance(c.arg, re.Pattern) for c in leaves)
    assert all(c.arg.flags & re.IGNORECASE for c in leaves)


def test_registry_refuses_duplicates_and_reserved_names():
    with pytest.raises(ValueError, match="registered twice"):
        condition("subject_contains", parse=p_bool, cost=1, text="x")(lambda f, a: (True, ""))
    with pytest.raises(ValueError):
        condition("any", parse=p_bool, cost=1, text="x")(lambda f, a: (True, ""))
