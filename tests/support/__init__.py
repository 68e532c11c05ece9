"""Test helpers, by kind: :mod:`.servers` (the daemon process, the sink SMTP server),
:mod:`.mail` (building and sending messages), :mod:`.clock` (the fake clock),
:mod:`.config` (test configuration files), :mod:`.desk` (in-process delivery and lookups)
and :mod:`.agents` (the agents directory most tests share).

The names tests have always imported from ``tests.support`` are re-exported here.
"""

from tests.support.clock import Clock
from tests.support.config import ROOT, write_config
from tests.support.desk import deliver, outbox_mails, ticket_json
from tests.support.mail import make_mail, send
from tests.support.servers import MaildeskProcess, Sink, free_port, wait_until

__all__ = ["ROOT", "Clock", "MaildeskProcess", "Sink", "deliver", "free_port", "make_mail", "outbox_mails", "send", "ticket_json",
           "wait_until", "write_config"]
