"""The ``maildesk`` command: :mod:`.main` parses arguments and dispatches to one module
per command group; :mod:`.errors` turns every failure into one line and a sysexits code.

::

    main.py     the argument parser, ``main()`` and dispatch
    args.py     argument conventions: one-line usage errors, positive numbers, aware times
    errors.py   every failure as one line and a sysexits code
    common.py   what the commands share: the database, table or JSON output, ID checks
    run.py      ``run`` (the daemon) and ``ingest`` (an MTA's pipe)
    db.py       ``db upgrade|status|vacuum``
    inbox.py    ``inbox list|retry|process``
    tickets.py  ``tickets list|show``
    search.py   the filters of ``tickets list`` and its CSV
    people.py   ``customers show`` and ``tickets attachment``
    outbox.py   ``outbox list|show|retry|flush``
    notices.py  ``notices list|retry``: agent notifications kept when they failed
    report.py   ``report``: the metrics of a period
    rules.py    ``rules check|test``
    imap.py     ``imap check``
    jobs.py     ``jobs list|run``
    events.py   ``events list``: the audit log
    status.py   ``status``: liveness and backlog
"""
