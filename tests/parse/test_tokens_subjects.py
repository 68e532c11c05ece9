"""Signed reply tokens and subject handling."""

from __future__ import annotations

import pytest

from maildesk.outgoing.tokens import (
    ReplyToken,
    bounce_address,
    find_token,
    is_bounce_token,
    make_address,
    make_token,
    new_key,
    verify_bounce,
    verify_token,
)
from maildesk.parse.subjects import base_subject, find_refs, reply_subject

S = "secret-1-0123456789-abcdefghijklmnop"


@pytest.mark.parametrize("tok", [ReplyToken("t", 1), ReplyToken("t", 1042, "bob"), ReplyToken("s", 7, None, 4),
                                 ReplyToken("t", 10**15, "a.b_c")])
def test_token_round_trip(tok):
    assert verify_token(S, make_token(S, tok)) == tok
    assert verify_token(S, make_token(S, tok).upper()) == tok  # MTAs may change case


def test_tampering_is_detected():
    token = make_token(S, ReplyToken("t", 1042, "bob"))
    assert verify_token("other", token) is None
    assert verify_token(S, token.replace("t1042", "t1043")) is None
    assert verify_token(S, token.replace("-a-bob", "-a-eve")) is None
    assert verify_token(S, token.replace("-a-bob", "")) is None
    survey = make_token(S, ReplyToken("s", 7, None, 4))
    assert verify_token(S, survey.replace("-4-", "-5-")) is None
    assert verify_token(S, "t1-aaaaaaaaaaaaaaaa") is None and verify_token(S, "garbage") is None
    assert verify_token(S, "t1-" + "a" * 26) is None


def test_reply_token_carries_128_bits_of_mac():
    assert len(make_token(S, ReplyToken("t", 5)).rsplit("-", 1)[1]) == 26  # base32: 5 bits a character


def test_bounce_address_round_trip_and_tampering():
    key = new_key()
    address = bounce_address(S, "support+x@example.test", key)
    local = address.split("@")[0]
    assert address.startswith(f"support+b{key}-") and len(local) <= 64
    token = local.split("+", 1)[1]
    assert is_bounce_token(token) and verify_bounce(S, token) == key and verify_bounce(S, token.upper()) == key
    assert verify_bounce("another", token) is None
    other = new_key()
    assert verify_bounce(S, token.replace(key, other)) is None
    assert verify_token(S, token) is None  # never a reply token


def test_keys_are_random_and_long():
    keys = {new_key() for _ in range(1000)}
    assert len(keys) == 1000 and all(len(k) == 26 and k.isalnum() and k.islower() for k in keys)


def test_address_and_finding_tokens():
    addr = make_address(S, "support@example.test", ReplyToken("t", 5))
    assert addr.startswith("support+t5-") and addr.endswith("@example.test")
    assert find_token((addr, "other+x@example.test"), ("support@example.test",)) == [addr.split("+")[1].split("@")[0]]
    with pytest.raises(ValueError):
        make_token(S, ReplyToken("t", 1, "Bad-Login"))


@pytest.mark.parametrize("subject, base", [
    ("Re: Re: RE: hello", "hello"), ("AW: WG: Drucker", "Drucker"), ("SV: VS: hei", "hei"),
    ("Antw: Odp: test", "test"), ("Ответ: Отв: Принтер", "Принтер"), ("Απ: Σχετ: δοκιμή", "δοκιμή"),
    ("השב: תשובה: שלום", "שלום"), ("回复: 返信: 件名", "件名"), ("Fwd: FW: Tr: x", "x"), ("Re[3]: x", "x"),
    ("[MD-12] Re: x", "x"), ("Réponse", "Réponse"), ("Reply needed", "Reply needed"), ("", ""),
    # what our own mails put after the reference goes with it, and only there
    ("Re: [MD-14] Closed: Printer", "Printer"), ("AW: [MD-14] Resolved: Printer", "Printer"),
    ("Re: [MD-3] Waiting for your answer: VPN", "VPN"), ("Re: [MD-13] Merged into MD-12: VPN", "VPN"),
    ("Closed: the deal", "Closed: the deal"), ("Re: Resolved: x", "Resolved: x"),
])
def test_base_subject(subject, base):
    assert base_subject(subject, "MD") == base


def test_reply_subject_and_refs():
    assert reply_subject("AW: Ответ: Re: Drucker", "MD", 7) == "[MD-7] Re: Drucker"
    assert reply_subject("[MD-7] Re: Drucker", "MD", 7) == "[MD-7] Re: Drucker"
    assert find_refs("Re: [MD-12] and [md-13]; not XMD-14 nor MD-15x", "MD") == [12, 13]
