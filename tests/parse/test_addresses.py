"""The one sub-address parser (maildesk.parse.addresses)."""

from __future__ import annotations

import pytest

from maildesk.parse.addresses import base_address, is_support_address, split_subaddress, support_tag, tagged_address


@pytest.mark.parametrize("address, ok", [("support@example.test", True), ("SUPPORT@Example.Test", True),
                                         ("support+t1-abc@example.test", True), ("billing@example.test", True),
                                         ("support@other.test", False), ("sales@example.test", False)])
def test_support_address_matching(address, ok):
    assert is_support_address(address, ("support@example.test", "billing@example.test")) is ok


def test_split_and_base():
    assert split_subaddress("Support+T1-x+y@Example.test") == ("Support", "T1-x+y", "Example.test")
    assert split_subaddress("support@example.test") == ("support", "", "example.test")
    assert base_address("Support+T1@Example.test") == "Support@Example.test"  # case kept
    assert base_address("support+@example.test") == "support@example.test"
    assert base_address("support@example.test") == "support@example.test"
    assert base_address("no-at-sign") == "no-at-sign"


def test_tagged_address_replaces_any_tag():
    assert tagged_address("support@example.test", "t5-abc") == "support+t5-abc@example.test"
    assert tagged_address("support+old@example.test", "b1-x") == "support+b1-x@example.test"


def test_support_tag():
    bases = {"support@example.test"}
    assert support_tag("Support+T5-ABC@example.test", bases) == "t5-abc"
    assert support_tag("support+@example.test", bases) == ""
    assert support_tag("support@example.test", bases) == ""
    assert support_tag("other+x@example.test", bases) == ""
