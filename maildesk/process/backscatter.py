"""No backscatter: when maildesk must not send an automatic reply to a mail whose sender
may be forged (design section 4).

Answers from the message and the ``[auth]`` configuration alone (pure):

- a spam verdict from an upstream filter the operator declared in ``[auth] spam_headers``
  (SpamAssassin ``X-Spam-Flag: YES`` / ``X-Spam-Status: Yes``; Rspamd ``X-Spam: Yes`` or an
  ``X-Rspamd-Action`` other than ``no action``). Headers of filters not declared are ignored:
  anyone can write them, and believing a "No" would be worse than ignoring a "Yes";
- the topmost trusted ``Authentication-Results`` saying ``dmarc=fail``, or ``spf=fail`` with
  no DKIM pass, for the sender's domain;
- with ``[auth] ack_only_authenticated``, any sender that header does not authenticate.

The ticket is still opened; the caller records the reason as ``autoreply_suppressed``.
"""

from __future__ import annotations

from maildesk.config.load import AuthConfig
from maildesk.parse.message import InboundMessage
from maildesk.process.authz import check_sender

__all__ = ["backscatter_reason", "spam_verdict"]


def spam_verdict(msg: InboundMessage, filters: tuple[str, ...]) -> str | None:
    """Which declared upstream filter calls this mail spam, or None."""
    if "spamassassin" in filters:
        if msg.header("x-spam-flag").strip().lower() == "yes":
            return "SpamAssassin X-Spam-Flag: YES"
        if msg.header("x-spam-status").strip().lower().startswith("yes"):
            return "SpamAssassin X-Spam-Status: Yes"
    if "rspamd" in filters:
        if msg.header("x-spam").strip().lower() == "yes":
            return "Rspamd X-Spam: Yes"
        action = " ".join(msg.header("x-rspamd-action").split()).lower()
        if action and action != "no action":
            return f"Rspamd X-Rspamd-Action: {action}"
    return None


def backscatter_reason(msg: InboundMessage, auth: AuthConfig) -> str | None:
    """Why no automatic mail may answer ``msg`` (its sender may be forged), or None."""
    verdict = spam_verdict(msg, auth.spam_headers)
    if verdict:
        return f"marked as spam upstream ({verdict})"
    check = check_sender(msg, auth.trusted_authserv_ids)
    if check.failed:
        return f"sender not authenticated: {check.failed} in the trusted Authentication-Results"
    if auth.ack_only_authenticated and not check.authenticated:
        return "[auth] ack_only_authenticated: the trusted Authentication-Results does not authenticate the sender"
    return None
