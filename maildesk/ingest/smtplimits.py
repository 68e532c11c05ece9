"""Connection limits of the SMTP/LMTP listener: how many at once, overall and per client.

:class:`Gate` is the listener's protocol factory. Each new connection first gets a tiny
:class:`_Door` protocol; it looks at the client's address and either hands the connection
to a real SMTP protocol (``transport.set_protocol``) or answers ``421 4.7.0`` and closes,
so a refused connection costs no SMTP session, reader or task. A client is its IPv4
address, or its IPv6 /64 (one subscriber's usual allocation). Refusals are logged once
per ``log_interval`` as a summary, never once per connection.

:class:`AcceptErrors` is the event loop's exception handler while the listener runs:
asyncio already pauses accepting for a second when ``accept()`` fails for lack of file
descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM); this keeps it from logging a
traceback each time and logs one line per interval with the count instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable

__all__ = ["AcceptErrors", "Gate", "client_of"]

log = logging.getLogger("maildesk.ingest")

_MAX_TRACKED = 1000  # distinct refused clients remembered per log interval


def client_of(peer) -> str:
    """The address a per-client limit counts: IPv4 as it is, IPv6 by its /64."""
    host = peer[0] if isinstance(peer, tuple) and peer else ""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host or "local"
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class _Summary:
    """Counts events and logs them at most once per interval: the first at once, the rest at the interval's end."""

    def __init__(self, interval: float, write: Callable[[Counter, Counter], None]):
        self.interval, self.write = interval, write
        self.kinds: Counter = Counter()
        self.clients: Counter = Counter()
        self._quiet_until = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def add(self, kind: str, client: str = "") -> None:
        self.kinds[kind] += 1
        if client and (client in self.clients or len(self.clients) < _MAX_TRACKED):
            self.clients[client] += 1
        if self._handle is not None:
            return
        delay = self._quiet_until - time.monotonic()
        if delay <= 0:
            self.flush()
        else:
            self._handle = asyncio.get_running_loop().call_later(delay, self.flush)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self.kinds:
            self.write(self.kinds, self.clients)
            self.kinds, self.clients = Counter(), Counter()
            self._quiet_until = time.monotonic() + self.interval


class Gate:
    """Counts open connections overall and per client; ``make_protocol(on_close)`` builds an admitted one's SMTP protocol."""

    def __init__(self, make_protocol: Callable[[Callable[[], None]], asyncio.Protocol], *, hostname: str,
                 max_connections: int, max_per_client: int, log_interval: float = 60.0):
        self.make_protocol, self.hostname = make_protocol, hostname
        self.max_connections, self.max_per_client = max_connections, max_per_client
        self.open = 0
        self.by_client: Counter = Counter()
        self.refused = _Summary(log_interval, self._log_refused)

    def __call__(self) -> asyncio.Protocol:
        return _Door(self)

    def admit(self, transport: asyncio.BaseTransport) -> None:
        client = client_of(transport.get_extra_info("peername"))
        if self.open >= self.max_connections:
            self._refuse(transport, client, "total", "Too many connections to this server")
        elif self.by_client[client] >= self.max_per_client:
            self._refuse(transport, client, "client", "Too many connections from your address")
        else:
            self.open += 1
            self.by_client[client] += 1
            protocol = self.make_protocol(lambda: self._release(client))
            transport.set_protocol(protocol)
            protocol.connection_made(transport)

    def _release(self, client: str) -> None:
        self.open -= 1
        self.by_client[client] -= 1
        if self.by_client[client] <= 0:
            del self.by_client[client]

    def _refuse(self, transport, client: str, kind: str, why: str) -> None:
        transport.write(f"421 4.7.0 {self.hostname} {why}; try again later\r\n".encode())
        transport.close()
        self.refused.add(kind, client)

    def _log_refused(self, kinds: Counter, clients: Counter) -> None:
        top = ", ".join(f"{c} ({n})" for c, n in clients.most_common(3))
        log.warning("refused %d SMTP connection(s) with 421 4.7.0: %d over [smtp] max_connections = %d, %d over "
                    "max_connections_per_client = %d; most from %s (further refusals are summed up every %g seconds)",
                    sum(kinds.values()), kinds["total"], self.max_connections, kinds["client"], self.max_per_client,
                    top or "-", self.refused.interval)

    def close(self) -> None:
        self.refused.flush()


class _Door(asyncio.Protocol):
    """A new connection until the gate has decided; it never sees the client's data."""

    def __init__(self, gate: Gate):
        self.gate = gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.gate.admit(transport)

    def data_received(self, data: bytes) -> None:  # a refused client talking before the close
        pass

    def eof_received(self) -> bool:
        return False


class AcceptErrors:
    """The loop's exception handler: ``accept()`` out of resources is counted and logged once per interval."""

    MESSAGE = "socket.accept() out of system resource"

    def __init__(self, loop: asyncio.AbstractEventLoop, log_interval: float = 60.0):
        self.loop = loop
        self.previous = loop.get_exception_handler()
        self.errors: Counter = Counter()
        self.summary = _Summary(log_interval, self._log)

    def install(self) -> None:
        self.loop.set_exception_handler(self)

    def uninstall(self) -> None:
        self.summary.flush()
        if self.loop.get_exception_handler() is self:
            self.loop.set_exception_handler(self.previous)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        if context.get("message") == self.MESSAGE and isinstance(exc, OSError):
            self.summary.add(f"{exc.strerror or exc} (errno {exc.errno})")
        elif self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)

    def _log(self, kinds: Counter, clients: Counter) -> None:
        what = ", ".join(f"{n} x {kind}" for kind, n in kinds.items())
        log.warning("accept() failed on the SMTP listener: %s; accepting pauses for a second each time (asyncio). "
                    "Lower [smtp] max_connections below the file limit (ulimit -n) or raise that limit "
                    "(further failures are summed up every %g seconds)", what, self.summary.interval)
