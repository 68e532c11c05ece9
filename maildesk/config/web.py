"""``[web]``: the agents' web view and the customers' status pages (maildesk.web), off by default."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["WebConfig", "check_web"]


@dataclass(frozen=True)
class WebConfig:
    # host:port the web server listens on; empty: no web server (the default).
    listen: str = ""
    # The address people reach it at, for links in mail (sign-in links, status pages), e.g.
    # "https://desk.example.com" behind a reverse proxy; empty: http://<listen>.
    base_url: str = ""
    # TLS served by maildesk itself (both or neither); without them run it behind a proxy.
    tls_cert: str | None = None
    tls_key: str | None = None
    # A sign-in link is good for this many minutes, once; a session for this many hours.
    link_minutes: float = 15.0
    session_hours: float = 12.0
    # Sign-in requests within signin_window seconds, per address and per client address.
    signin_per_address: int = 5
    signin_per_client: int = 20
    signin_window: int = 900
    # Tickets per page in every list.
    page_size: int = 50
    # Acknowledgements carry a link to the customer's status page.
    status_links: bool = True

    @property
    def enabled(self) -> bool:
        return bool(self.listen)

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @property
    def url(self) -> str:
        """Where links in mail point: base_url, else the listen address."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host, port = self.address
        return f"{'https' if self.tls else 'http'}://{host}:{port}"


def check_web(web: WebConfig, error) -> None:
    """``error(key, hint)`` builds the ConfigError naming ``[web] key``."""
    if (web.listen and not re.fullmatch(r"\[?[^\s\[\]]*\]?:\d{1,5}", web.listen)) or (web.listen and not 0 < int(web.listen.rpartition(":")[2]) < 65536):
        raise error("listen", f"expected host:port such as \"127.0.0.1:8025\", got {web.listen!r}")
    if web.base_url and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", web.base_url):
        raise error("base_url", f"expected an http:// or https:// URL such as \"https://desk.example.com\", got {web.base_url!r}")
    if bool(web.tls_cert) != bool(web.tls_key):
        raise error("tls_cert" if not web.tls_cert else "tls_key", "set both tls_cert and tls_key, or neither (TLS at a reverse proxy)")
    for key in ("link_minutes", "session_hours"):
        if getattr(web, key) <= 0:
            raise error(key, f"expected a positive number, got {getattr(web, key)}")
    for key in ("signin_per_address", "signin_per_client", "signin_window", "page_size"):
        if getattr(web, key) < 1:
            raise error(key, f"expected at least 1, got {getattr(web, key)}")
