"""Running maildesk: the composition root, the worker processes and the scheduler.

::

    build.py      the composition root: the one place that builds concrete objects
    root.py       runs the daemon (listener, intake, workers, jobs) and stops it cleanly
    workers.py    processing and delivery in processes of their own
    scheduler.py  APScheduler running the jobs, once across a cluster
    jobs.py       scheduled work as plain functions of (desk, now)
    health.py     liveness and backlog for ``maildesk status``
    metrics.py    Prometheus metrics on ``[metrics] listen``
    logsetup.py   one line per event, addresses redacted at INFO
    memtrim.py    freed large blocks returned to the operating system
"""
