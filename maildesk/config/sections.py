"""What maildesk.toml holds: one frozen dataclass per section, and :class:`Config` holding them.

Defaults and comments here are the reference for every key; :mod:`maildesk.config.load`
reads the file into these classes and checks it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from maildesk.config.credentials import Secret
from maildesk.config.web import WebConfig

__all__ = [
    "AuthConfig",
    "Config",
    "DatabaseConfig",
    "ImapConfig",
    "LogConfig",
    "MailConfig",
    "MetricsConfig",
    "OutboundConfig",
    "PathsConfig",
    "ProcessingConfig",
    "SmtpConfig",
    "WorkflowConfig",
]


@dataclass(frozen=True)
class DatabaseConfig:
    url: str
    # SQLite only: "full" fsyncs every commit (durable across power loss), "normal" only
    # at WAL checkpoints (durable across a crash of the process, not of the machine).
    sqlite_synchronous: str = "full"
    echo: bool = False


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 2525
    max_message_size: int = 26_214_400
    lmtp: bool = False
    enabled: bool = True
    max_recipients: int = 100
    # Octets in one line of a message, its CRLF or LF not counted (RFC 5321 asks for 998; longer gets 500 5.6.0).
    max_line_length: int = 65536
    # Connections open at once, overall and from one client address (IPv6: one /64); more get 421 4.7.0.
    max_connections: int = 100
    max_connections_per_client: int = 50
    # Seconds: silence between commands or DATA blocks; a whole session; DATA as a whole.
    idle_timeout: float = 300.0
    session_timeout: float = 1800.0
    data_timeout: float = 600.0
    # DATA slower than this (bytes per second, on average since DATA began) once data_rate_grace seconds have passed is cut off; 0: no minimum.
    min_data_rate: int = 1024
    data_rate_grace: float = 30.0
    # Refused connections and accept() failures are logged once per this many seconds, summed up.
    limit_log_interval: float = 60.0
    # Group commit: at most this many accepted messages share one fsync ...
    commit_batch: int = 256
    # ... and at most this many bytes of raw mail in one commit (the first message whatever its size).
    commit_batch_bytes: int = 33_554_432


@dataclass(frozen=True)
class MailConfig:
    addresses: tuple[str, ...]
    secret: Secret
    ticket_prefix: str = "MD"
    support_name: str = "Support"
    # Automatic replies to one address within autoreply_window seconds.
    autoreply_limit: int = 3
    autoreply_window: int = 3600
    # After a permanent failure (5.x.x) no automatic mail goes to that address for this long.
    suppress_days: int = 30
    max_attachment_size: int = 20_971_520
    max_mime_depth: int = 20
    # Bytes of text (and of HTML) kept from one inbound mail, on the ticket and in memory while
    # it is processed; a longer body is cut with a note (the raw mail stays whole, attachments too).
    max_text_kept: int = 1_048_576
    # To and Cc addresses taken from one mail (like [smtp] max_recipients for RCPT TO); the
    # rest are ignored for threading and participants, and the inbox row says so (a defect).
    max_addresses_per_mail: int = 100
    # Security events recorded for one mail; beyond that one event says how many more there were.
    max_security_events: int = 10

    @property
    def primary(self) -> str:
        return self.addresses[0]


@dataclass(frozen=True)
class OutboundConfig:
    smarthost: str | None = None
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: Secret | None = None
    maildir: str | None = None
    # A CA bundle for a smarthost whose certificate a private CA signed (default: the system's).
    ca_file: str | None = None
    timeout: float = 30.0
    max_attempts: int = 12
    # Exponential backoff: first retry after retry_base seconds, doubling, at most retry_max.
    retry_base: float = 30.0
    retry_max: float = 3600.0
    # An agent notification that cannot be rendered and queued (a broken template, the
    # database busy) is tried again with the same backoff, then kept as failed after this
    # many attempts (about an hour with the defaults): `maildesk notices retry`.
    notice_max_attempts: int = 8
    poll_interval: float = 1.0
    # Sent mail keeps its bytes (outbox_bodies) this many days after delivery, then only its
    # outbox row (envelope, Message-ID for threading) stays; the purge_sent job removes them.
    keep_sent_days: float = 3.0
    # An outgoing mail whose text is longer than this many bytes goes as text/plain only,
    # without an HTML copy of the same text.
    alternative_max: int = 102_400
    # Delivered mails between two commits of their outcome: 1 records each mail as sent as
    # soon as its 250 arrives, so a crash re-sends at most the mail in flight (docs/scaling.md).
    record_every: int = 1

    @property
    def smarthost_addr(self) -> tuple[str, int] | None:
        if not self.smarthost:
            return None
        host, _, port = self.smarthost.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class ImapConfig:
    name: str
    host: str
    username: str
    port: int = 993
    security: str = "tls"  # tls | starttls | none
    password: Secret | None = None
    oauth2_token: Secret | None = None
    folder: str = "INBOX"
    after: str = "seen"  # seen | move | delete
    move_to: str | None = None
    queue: str | None = None
    team: str | None = None
    poll_interval: float = 60.0  # seconds between polls when the server has no IDLE
    idle_timeout: float = 1500.0  # re-issue IDLE after this long (servers drop it at 30 min)
    batch_size: int = 50  # messages per FETCH and per commit
    timeout: float = 60.0  # socket timeout for connecting and for each command
    # Reconnect backoff after a failure: retry_base seconds, doubling, at most retry_max.
    retry_base: float = 5.0
    retry_max: float = 300.0


@dataclass(frozen=True)
class ProcessingConfig:
    batch_size: int = 200
    # A processing step loads pending raw mail up to this many bytes in total (and at most
    # batch_size messages); a single larger message is processed alone.
    batch_bytes: int = 33_554_432
    poll_interval: float = 1.0
    # Processing and delivery in a child process each (false: threads of the daemon).
    processes: bool = True
    # PostgreSQL: decide the mails of one thread one at a time and in order across instances
    # (maildesk/process/threadlock.py, docs/scaling.md). Costs some processing CPU (docs/performance.md);
    # false only for a single instance. SQLite has one writer and ignores it.
    serialize_threads: bool = True


@dataclass(frozen=True)
class PathsConfig:
    config_dir: str = "config"
    data_dir: str = "var"


@dataclass(frozen=True)
class AuthConfig:
    # authserv-ids of your own MTAs whose Authentication-Results headers are believed:
    # a DKIM or SPF pass there lets an agent's mail run commands without the reply token.
    trusted_authserv_ids: tuple[str, ...] = ()
    # Domains whose mail server stops its users from sending with each other's From: only
    # for these does an aligned DKIM pass (header.d = the agent's domain) authenticate an agent.
    dkim_domains: tuple[str, ...] = ()
    # Upstream spam filters whose verdict headers are believed ("spamassassin", "rspamd"):
    # mail they mark as spam gets no automatic reply. Only list filters your MTA runs, since
    # a sender can write these headers too (a false "Yes" only costs them the acknowledgement).
    spam_headers: tuple[str, ...] = ()
    # Acknowledge only senders that the trusted Authentication-Results authenticates
    # (dmarc=pass, or a DKIM/SPF pass aligned with the From domain).
    ack_only_authenticated: bool = False


@dataclass(frozen=True)
class WorkflowConfig:
    # Status a ticket moves to when an agent answers the customer ("pending": waiting on them).
    agent_reply_status: str = "pending"
    # Tell the customer when their ticket is resolved / closed.
    notify_customer_on: tuple[str, ...] = ("resolved", "closed")
    # Messages shown in an agent notification's short history.
    history_in_notifications: int = 3
    # Attachments are copied into agent notifications up to this many bytes in total;
    # larger ones are only listed (they stay on the ticket and in the raw message).
    notification_attachments_max: int = 5_242_880
    # A message's text is shown in notifications up to this many characters, then cut with a
    # note saying where to read the whole (the ticket, `maildesk tickets show`).
    notification_text_max: int = 102_400
    # Pending on the customer: remind after this many days, resolve this many days after
    # the reminder; resolved tickets close after close_resolved_after_days. 0 = never.
    reminder_after_days: float = 3.0
    auto_resolve_after_days: float = 4.0
    close_resolved_after_days: float = 7.0
    no_reminders_for_teams: tuple[str, ...] = ()
    # Satisfaction survey in the "resolved" mail: "1-5" (scores 1..5) or "good-bad"; "off" for none.
    survey: str = "1-5"
    # Ratings at or below this notify the team lead (good-bad: bad = 1, good = 5).
    bad_rating_at_most: int = 2
    # Agent notifications caused by inbound mail: within notify_window seconds, the first
    # notify_limit mails from one sender, and the first notify_limit mails on one ticket,
    # are notified one by one; the rest are listed in one digest per agent per window. 0: no limit.
    notify_limit: int = 5
    notify_window: int = 3600
    # The weekly digest (maildesk/reporting/weekly.py, docs/reports.md): each team's lead gets their
    # team's; digest_to gets the one for all teams. false: none is sent.
    digest: bool = True
    digest_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    # At INFO and above mail addresses are shown as j***@example.com.
    redact_addresses: bool = True


@dataclass(frozen=True)
class MetricsConfig:
    # host:port of the Prometheus metrics listener (maildesk.daemon.metrics); empty: off.
    listen: str = ""

    @property
    def address(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True)
class Config:
    path: Path
    base_dir: Path
    database: DatabaseConfig
    mail: MailConfig
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    imap: tuple[ImapConfig, ...] = ()
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    web: WebConfig = field(default_factory=WebConfig)  # maildesk/config/web.py

    def resolve(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    @property
    def config_dir(self) -> Path:
        return self.resolve(self.paths.config_dir)
