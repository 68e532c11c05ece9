"""Connecting and logging in to an IMAP server, and saying what went wrong in one line.

Used by the IMAP source (:mod:`maildesk.ingest.imap`) and ``maildesk imap check``.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections.abc import Callable

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, LoginError

from maildesk.config.load import ImapConfig

__all__ = ["ConnectionLost", "connect", "describe_error"]

log = logging.getLogger("maildesk.ingest.imap")


class ConnectionLost(Exception):
    """The server said BYE or closed the connection."""


def connect(box: ImapConfig) -> IMAPClient:
    """A connected, logged-in client (not yet in a folder). Raises imapclient/OS errors.

    A rejected XOAUTH2 token is most often an expired one: the token command runs again
    and a fresh connection tries the new token (some servers slow down a second
    AUTHENTICATE on the connection that saw the failure)."""
    if box.oauth2_token is None:
        assert box.password is not None  # config check: password or oauth2_token
        return _open(box, lambda c: c.login(box.username, box.password.reveal()))
    try:
        return _open(box, lambda c: c.oauth2_login(box.username, box.oauth2_token.reveal()))
    except LoginError:
        log.info("XOAUTH2 token rejected; fetching a fresh one")
    return _open(box, lambda c: c.oauth2_login(box.username, box.oauth2_token.reveal(refresh=True)))


def _open(box: ImapConfig, login: Callable[[IMAPClient], object]) -> IMAPClient:
    context = ssl.create_default_context()
    client = IMAPClient(box.host, port=box.port, ssl=box.security == "tls", ssl_context=context,
                        timeout=box.timeout)
    try:
        _keepalive(client.socket())
        if box.security == "starttls":
            client.starttls(context)
        login(client)
    except BaseException:
        client.shutdown()
        raise
    return client


def _keepalive(sock: socket.socket) -> None:
    """TCP keepalive: a connection that died silently (NAT, firewall) during a long
    IDLE is noticed within about two minutes instead of at the next IDLE renewal."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


_BYTES_REPR = re.compile(r"""^b(['"])(.*)\1$""", re.S)  # imaplib puts server text in errors as b'...'


def describe_error(exc: BaseException) -> str:
    """One line an operator can act on."""
    text = _BYTES_REPR.sub(r"\2", str(exc).strip()) or exc.__class__.__name__
    if isinstance(exc, LoginError):
        return f"login failed: {text}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (server down, or wrong host/port?)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {text} (check security = tls/starttls and the port)"
    if isinstance(exc, (IMAPClientAbortError, ConnectionLost, ConnectionError)):
        return f"connection lost: {text}"
    return f"{exc.__class__.__name__}: {text}" if isinstance(exc, OSError) else text
