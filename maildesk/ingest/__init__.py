"""Getting mail in: the SMTP/LMTP listener, IMAP mailboxes and the ``maildesk ingest`` pipe.

Every source ends in :mod:`.intake`, which commits the raw bytes to the inbox table before
the transport is told "ok" (250, ``\\Seen``, exit 0). Nothing here parses or decides.

::

    smtp.py        the aiosmtpd listener (SMTP or LMTP), 250 only after commit
    smtpdata.py    DATA read in blocks, bare LF, per-session time limits
    smtplimits.py  connections at once, overall and per client
    imap.py        IMAP IDLE/poll: fetch, commit, then mark / move / delete
    imapconn.py    connect and log in, one-line errors
    lease.py       one reader per mailbox across instances (PostgreSQL advisory lock)
    intake.py      durable accept: raw bytes -> inbox row
    pipe.py        ``maildesk ingest`` on SQLite without loading SQLAlchemy
"""
