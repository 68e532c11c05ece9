"""Running maildesk: the composition root, the worker processes and the scheduler.

::

    root.py       builds every concrete object (the one place) and runs them
    workers.py    processing and delivery in processes of their own
    scheduler.py  APScheduler running the jobs, once across a cluster
    jobs.py       scheduled work as plain functions of (desk, now)
    health.py     liveness and backlog for ``maildesk status``
    metrics.py    Prometheus metrics on ``[metrics] listen``
    logsetup.py   one line per event, addresses redacted at INFO
    memtrim.py    freed large blocks returned to the operating system
"""
