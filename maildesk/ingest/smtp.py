"""The SMTP/LMTP listener (aiosmtpd): 250 only after the raw message is committed.

MAIL and RCPT take internationalized addresses (SMTPUTF8, RFC 6531); an address that is
not valid UTF-8 gets ``553`` (it could never be stored). RCPT: the support addresses and
their ``+token`` sub-addresses are accepted, anything else gets ``550 5.1.1``. DATA: the message goes through :class:`Intake` (group commit);
``250 2.0.0`` once it is committed, ``451 4.3.0`` when it could not be stored; the
protocol (:mod:`maildesk.ingest.smtpdata`) answers ``552`` over the SIZE limit and
``500 5.6.0`` for a line over ``max_line_length``, ``421 4.4.2`` when a session breaks a
time limit, and :class:`maildesk.ingest.smtplimits.Gate` answers ``421 4.7.0`` to a
connection over ``max_connections`` or ``max_connections_per_client``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os

from aiosmtpd.smtp import Envelope, Session

from maildesk.config.load import Config
from maildesk.daemon.logsetup import redact
from maildesk.errors import ListenerUnavailable, StorageError
from maildesk.ingest.intake import Intake, RawMail
from maildesk.ingest.smtpdata import FastLMTP, FastSMTP
from maildesk.ingest.smtplimits import AcceptErrors, Gate
from maildesk.parse.addresses import is_support_address

__all__ = ["SmtpHandler", "SmtpListener"]

log = logging.getLogger("maildesk.ingest")


def _utf8(address: str) -> bool:
    """Was the address valid UTF-8 on the wire? (aiosmtpd keeps invalid bytes as surrogate escapes.)"""
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class SmtpHandler:
    def __init__(self, config: Config, intake: Intake, source: str = "smtp"):
        self.config, self.intake, self.source = config, intake, source
        self.max_recipients = config.smtp.max_recipients

    async def handle_MAIL(self, server, session: Session, envelope: Envelope, address: str, mail_options):
        if not _utf8(address):
            return "553 5.1.7 The sender address is not valid UTF-8"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, rcpt_options):
        if not _utf8(address):
            return "553 5.1.3 The recipient address is not valid UTF-8"
        if not is_support_address(address, self.config.mail.addresses):
            return "550 5.1.1 No such mailbox here: this server only accepts mail for its support addresses"
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope):
        raw = envelope.original_content or b""
        item = RawMail(raw=raw if isinstance(raw, bytes | bytearray) else bytes(raw), mail_from=envelope.mail_from or "", rcpt_to=tuple(envelope.rcpt_tos),
                       source=self.source)
        try:
            inbox_id = await self.intake.submit(item)
        except StorageError as exc:
            log.error("451 for a message from %s: %s", redact(item.mail_from), exc)
            reply = "451 4.3.0 Temporary failure storing the message; please retry later"
        else:
            log.info("accepted inbox=%d from=%s size=%d via %s", inbox_id, redact(item.mail_from), len(raw), self.source)
            reply = f"250 2.0.0 OK queued as {inbox_id}"
        if self.source == "lmtp":  # LMTP: one reply per recipient
            return "\r\n".join(reply for _ in envelope.rcpt_tos)
        return reply


class SmtpListener:
    """Binds the listener on the daemon's event loop, behind the connection limits (:mod:`maildesk.ingest.smtplimits`)."""

    def __init__(self, config: Config, intake: Intake):
        self.config = config
        lmtp = config.smtp.lmtp
        self.handler = SmtpHandler(config, intake, "lmtp" if lmtp else "smtp")
        self._server: asyncio.base_events.Server | None = None
        self._gate: Gate | None = None
        self._accept_errors: AcceptErrors | None = None

    @property
    def hostname(self) -> str:
        return self.config.mail.primary.split("@")[1]

    def _protocol(self, on_close):
        smtp = self.config.smtp
        cls = FastLMTP if smtp.lmtp else FastSMTP
        return cls(self.handler, data_size_limit=smtp.max_message_size, hostname=self.hostname, ident="maildesk",
                   enable_SMTPUTF8=True, decode_data=False, max_line_length=smtp.max_line_length,
                   timeout=smtp.idle_timeout, session_timeout=smtp.session_timeout, data_timeout=smtp.data_timeout,
                   min_data_rate=smtp.min_data_rate, data_rate_grace=smtp.data_rate_grace, on_close=on_close)

    async def bind(self) -> None:
        """Take the address without accepting yet: the daemon binds before it starts any worker,
        so an address in use is one error at start (:class:`ListenerUnavailable`), nothing else."""
        if self._server is not None:
            return
        smtp = self.config.smtp
        loop = asyncio.get_running_loop()
        _check_file_limit(smtp.max_connections)
        self._accept_errors = AcceptErrors(loop, smtp.limit_log_interval)
        self._accept_errors.install()
        self._gate = Gate(self._protocol, hostname=self.hostname, max_connections=smtp.max_connections,
                          max_per_client=smtp.max_connections_per_client, log_interval=smtp.limit_log_interval)
        host, port = smtp.host, smtp.port
        try:
            self._server = await loop.create_server(self._gate, host=host, port=port, reuse_address=True,
                                                    start_serving=False)
        except OSError as exc:
            hint = ("is maildesk (or another mail server) already running? Stop it, or set another [smtp] port in "
                    f"{self.config.path}") if exc.errno == errno.EADDRINUSE else f"check [smtp] host and port in {self.config.path}"
            reason = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's own wording repeats the address
            raise ListenerUnavailable(f"cannot listen on {host}:{port}: {reason}; {hint}") from exc

    async def start(self) -> tuple[str, int]:
        await self.bind()
        await self._server.start_serving()
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def stop(self) -> None:
        """Stop accepting new connections; sessions in DATA finish through the intake."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._gate is not None:
            self._gate.close()
        if self._accept_errors is not None:
            self._accept_errors.uninstall()
            self._accept_errors = None


def _check_file_limit(max_connections: int) -> None:
    """Warn when the process may run out of file descriptors before reaching ``max_connections``."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return
    if soft != resource.RLIM_INFINITY and max_connections + 64 > soft:
        log.warning("[smtp] max_connections = %d is close to or above this process's file limit (%d, ulimit -n): "
                    "accept() may fail before the cap is reached; raise the limit or lower max_connections",
                    max_connections, soft)
