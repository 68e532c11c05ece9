"""Sub-addresses: ``support+TAG@domain`` split into its base address and its tag.

The one place that knows how a sub-address is written. The tag carries maildesk's reply,
survey and bounce tokens; the base is the support address it was sent to. Pure string
functions: no configuration, no database. Case is kept; callers that compare lower-case
both sides (as :func:`is_support_address` does).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["base_address", "is_support_address", "split_subaddress", "support_tag", "tagged_address"]


def split_subaddress(address: str) -> tuple[str, str, str]:
    """``support+t1-x@example.test`` -> ``("support", "t1-x", "example.test")``.

    The tag is everything after the first ``+`` of the local part (``""`` when there is
    none); the domain is everything after the first ``@``.
    """
    local, _, domain = address.partition("@")
    base, _, tag = local.partition("+")
    return base, tag, domain


def base_address(address: str) -> str:
    """The address without its tag: ``support+t1-x@example.test`` -> ``support@example.test``.

    An address without a ``+`` in its local part comes back unchanged.
    """
    local, at, domain = address.partition("@")
    return local.partition("+")[0] + at + domain


def tagged_address(address: str, tag: str) -> str:
    """``address`` with ``tag`` as its sub-address, replacing any tag it had."""
    base, _, domain = split_subaddress(address)
    return f"{base}+{tag}@{domain}"


def is_support_address(address: str, support: Iterable[str]) -> bool:
    """True for one of the ``support`` addresses or a sub-address of one (``support+anything@domain``), in any case."""
    return base_address(address.lower()) in {a.lower() for a in support}


def support_tag(address: str, bases: set[str] | frozenset[str]) -> str:
    """The tag of ``address`` if it is a tagged sub-address of one of ``bases`` (lower-case), else ``""``.

    The address is compared lower-case and its tag comes back lower-case.
    """
    base, tag, domain = split_subaddress(address.lower())
    return tag if tag and f"{base}@{domain}" in bases else ""
