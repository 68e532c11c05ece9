"""maildesk: a self-hosted, email-driven helpdesk daemon.

One package per stage of the pipeline, each ``__init__`` naming its modules::

    ingest/      mail in: the SMTP/LMTP listener, the intake (group commit), IMAP, the pipe
    parse/       raw bytes -> one parsed message; sub-addresses
    process/     what a message does: threading, agents' commands, loop guards, bounces
    tickets/     ticket state, views and search
    rules/       routing rules: config/rules.toml -> a decision per message
    sla/         business hours, SLA policies, deadlines
    policy/      the admin's files in config/ (agents, knowledge base) and their reload
    outgoing/    mail out: rendering, the outbox, delivery, notifications
    reporting/   support reports and the weekly digest
    storage/     the database: engine, schema, migrations, group commit
    config/      maildesk.toml -> frozen dataclasses; secrets; TOML line numbers
    cli/         the ``maildesk`` command
    daemon/      the composition root (daemon/build.py), running the daemon, its workers and jobs
    web/         the web view for agents and the customers' status page (Starlette, in a child process)

and the modules every stage may use::

    vocab.py     statuses, priorities, open states and event kinds, defined once
    errors.py    the error tree and the exit codes
    desk.py      the services every stage needs, built once by daemon/build.py
    __main__.py  ``python -m maildesk``
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
