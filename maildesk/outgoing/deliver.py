"""Hand a rendered mail to the smarthost (SMTP, STARTTLS/TLS, AUTH) or to a local maildir.

smtplib and OSError exceptions are mapped here to :class:`TemporaryDeliveryError`
(retry: connection refused, timeouts, 4xx) or :class:`PermanentDeliveryError` (5xx).

A mail with an address that is not ASCII (RFC 6531; a non-ASCII domain alone goes out in
its IDNA form and needs nothing) is sent with ``SMTPUTF8`` when the smarthost offers it;
when it does not, that is a :class:`PermanentDeliveryError` naming the address and the host.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
import time
from pathlib import Path
from typing import Protocol

from maildesk.config.load import OutboundConfig
from maildesk.errors import PermanentDeliveryError, TemporaryDeliveryError
from maildesk.outgoing.mailbuild import needs_smtputf8, wire_address

__all__ = ["Deliverer", "MaildirDeliverer", "SmtpDeliverer", "make_deliverer"]


class Deliverer(Protocol):
    def send(self, mail_from: str, rcpt_to: list[str], raw: bytes) -> str:
        """Deliver or raise a DeliveryError; returns the server's answer for the log."""

    def close(self) -> None:
        """Drop any connection kept open between sends."""


def _which(needs: list[str], mail_from: str) -> str:
    """What needs SMTPUTF8, as the start of a sentence."""
    if needs == ["its headers"]:
        return "the mail's headers need"
    if needs == [mail_from]:
        return f"the sender's address {mail_from} needs"
    if len(needs) == 1:
        return f"the recipient's address {needs[0]} needs"
    return f"the addresses {', '.join(needs)} need"


class SmtpDeliverer:
    """One SMTP session is kept open across the sends of a batch (``close()`` ends it), so
    a burst of acknowledgements costs one connection, not one each. A session that
    broke is replaced once per send before the failure counts."""

    def __init__(self, host: str, port: int, *, starttls: bool = False, tls: bool = False,
                 username: str | None = None, password=None, timeout: float = 30.0, local_hostname: str | None = None,
                 ca_file: str | None = None):
        self.host, self.port, self.starttls, self.tls = host, port, starttls, tls
        self.username, self.password, self.timeout = username, password, timeout
        self.local_hostname, self.ca_file = local_hostname, ca_file
        self._smtp: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def _connect(self) -> smtplib.SMTP:
        cls = smtplib.SMTP_SSL if self.tls else smtplib.SMTP
        kwargs = {"context": self._context()} if self.tls else {}
        smtp = cls(self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname, **kwargs)
        try:
            if self.starttls:
                smtp.starttls(context=self._context())
            if self.username:
                smtp.login(self.username, self.password.reveal() if self.password else "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None

    def _on(self, smtp: smtplib.SMTP, mail_from: str, rcpt_to: list[str], raw: bytes):
        """``sendmail`` on ``smtp``, with ``SMTPUTF8`` when the mail needs it."""
        needs = needs_smtputf8([mail_from, *rcpt_to], raw)
        if not needs:
            return smtp.sendmail(mail_from, rcpt_to, raw)
        smtp.ehlo_or_helo_if_needed()
        if not smtp.has_extn("smtputf8"):
            raise PermanentDeliveryError(f"{_which(needs, mail_from)} SMTPUTF8, which {self.host}:{self.port} does not offer; "
                                         "this mail cannot be sent through it (use a smarthost that offers SMTPUTF8)")
        return smtp.sendmail(mail_from, rcpt_to, raw, mail_options=["SMTPUTF8"])

    def _sendmail(self, mail_from: str, rcpt_to: list[str], raw: bytes):
        reused = self._smtp is not None
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            return self._on(self._smtp, mail_from, rcpt_to, raw)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            self._smtp = None
            if not reused:
                raise
            self._smtp = self._connect()  # a kept session went stale: one fresh try
            return self._on(self._smtp, mail_from, rcpt_to, raw)
        except smtplib.SMTPResponseException:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.rset()  # the session stays usable for the next mail
            raise

    def send(self, mail_from: str, rcpt_to: list[str], raw: bytes) -> str:
        mail_from, rcpt_to = wire_address(mail_from), [wire_address(r) for r in rcpt_to]
        try:
            refused = self._sendmail(mail_from, rcpt_to, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{r}: {c} {m.decode(errors='replace')}" for r, (c, m) in exc.recipients.items())
            if all(500 <= c < 600 for c in codes):
                raise PermanentDeliveryError(f"all recipients refused: {detail}") from exc
            raise TemporaryDeliveryError(f"recipients refused: {detail}") from exc
        except smtplib.SMTPResponseException as exc:
            text = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
            if isinstance(exc, smtplib.SMTPAuthenticationError) or not 500 <= exc.smtp_code < 600:
                self.close()
                raise TemporaryDeliveryError(text) from exc
            raise PermanentDeliveryError(text) from exc
        except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            self._smtp = None
            raise TemporaryDeliveryError(f"{self.host}:{self.port}: {exc.__class__.__name__}: {exc}") from exc
        if refused:
            detail = "; ".join(f"{r}: {c}" for r, (c, _) in refused.items())
            return f"accepted for some recipients; refused: {detail}"
        return f"250 accepted by {self.host}:{self.port}"


class MaildirDeliverer:
    """Writes each mail into ``path/new`` (tmp, fsync, rename), for a machine without an MTA."""

    def __init__(self, path: Path):
        self.path = path
        self._seq = 0

    def close(self) -> None:
        pass

    def send(self, mail_from: str, rcpt_to: list[str], raw: bytes) -> str:
        try:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            self._seq += 1
            name = f"{time.time():.6f}.{os.getpid()}_{self._seq}.maildesk"
            tmp = self.path / "tmp" / name
            envelope = f"X-Envelope-From: <{mail_from}>\r\nX-Envelope-To: {', '.join(rcpt_to)}\r\n".encode()
            with open(tmp, "wb") as fh:
                fh.write(envelope + raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp, self.path / "new" / name)
        except OSError as exc:
            raise TemporaryDeliveryError(f"cannot write to maildir {self.path}: {exc.strerror}") from exc
        return f"written to {self.path / 'new' / name}"


def make_deliverer(cfg: OutboundConfig, base_dir: Path, hostname: str | None = None) -> Deliverer:
    if cfg.smarthost:
        host, port = cfg.smarthost_addr
        ca_file = str(base_dir / cfg.ca_file) if cfg.ca_file else None
        return SmtpDeliverer(host, port, starttls=cfg.starttls, tls=cfg.tls, username=cfg.username,
                             password=cfg.password, timeout=cfg.timeout, local_hostname=hostname, ca_file=ca_file)
    path = Path(cfg.maildir)
    return MaildirDeliverer(path if path.is_absolute() else base_dir / path)
