"""The SMTP/LMTP listener (aiosmtpd): 250 only after the raw message is committed.

RCPT: the support addresses and their ``+token`` sub-addresses are accepted, anything
else gets ``550 5.1.1``. DATA: the message goes through :class:`Intake` (group commit);
``250 2.0.0`` once it is committed, ``451 4.3.0`` when it could not be stored, and
aiosmtpd itself answers ``552`` when the SIZE limit is exceeded.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from functools import partial

from aiosmtpd.smtp import Envelope, Session

from maildesk.config import Config
from maildesk.errors import ListenerUnavailable, StorageError
from maildesk.ingest.intake import Intake, RawMail
from maildesk.ingest.smtpdata import FastLMTP, FastSMTP
from maildesk.logsetup import redact

__all__ = ["SmtpHandler", "SmtpListener", "is_support_address"]

log = logging.getLogger("maildesk.ingest")


def is_support_address(address: str, addresses: tuple[str, ...]) -> bool:
    """True for a support address or its sub-address (``support+anything@domain``)."""
    local, _, domain = address.lower().partition("@")
    base = local.split("+", 1)[0]
    return f"{base}@{domain}" in {a.lower() for a in addresses}


class SmtpHandler:
    def __init__(self, config: Config, intake: Intake, source: str = "smtp"):
        self.config, self.intake, self.source = config, intake, source
        self.max_recipients = config.smtp.max_recipients

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, rcpt_options):
        if not is_support_address(address, self.config.mail.addresses):
            return "550 5.1.1 No such mailbox here: this server only accepts mail for its support addresses"
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope):
        raw = envelope.original_content or b""
        item = RawMail(raw=bytes(raw), mail_from=envelope.mail_from or "", rcpt_to=tuple(envelope.rcpt_tos),
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
    """Binds the listener on the daemon's event loop."""

    def __init__(self, config: Config, intake: Intake):
        self.config = config
        lmtp = config.smtp.lmtp
        self.handler = SmtpHandler(config, intake, "lmtp" if lmtp else "smtp")
        self._server: asyncio.base_events.Server | None = None

    def _protocol(self):
        cls = FastLMTP if self.config.smtp.lmtp else FastSMTP
        return cls(self.handler, data_size_limit=self.config.smtp.max_message_size,
                   hostname=self.config.mail.primary.split("@")[1], ident="maildesk",
                   enable_SMTPUTF8=True, decode_data=False)

    async def bind(self) -> None:
        """Take the address without accepting yet: the daemon binds before it starts any worker,
        so an address in use is one error at start (:class:`ListenerUnavailable`), nothing else."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        host, port = self.config.smtp.host, self.config.smtp.port
        try:
            self._server = await loop.create_server(partial(self._protocol), host=host, port=port, reuse_address=True,
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
