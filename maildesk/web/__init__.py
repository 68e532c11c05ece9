"""The web view for agents and the status pages for customers (``[web]``, off by default).

::

    app.py        the Starlette application: routes, security headers, 404s
    common.py     what every page needs: templates, the signed-in viewer, CSRF checks, paging
    serve.py      uvicorn in a child process of the daemon, on a socket the daemon bound
    auth.py       sign-in by a one-time mailed link, signed session cookies, CSRF tokens, rate limits
    perms.py      who sees which ticket (teams, assignee, leads, admins), as Python and as SQL
    queues.py     the agents' lists: my queue, team queue, unassigned, SLA, search (paginated)
    ticket.py     one ticket's page and its attachments
    actions.py    the ticket page's forms, run through the mail #commands' code (process/agentmail.py)
    reports.py    the report of maildesk.reporting for the teams the viewer may see
    customer.py   a customer's status page and the knowledge base, behind a signed link
    text.py       mail text and HTML for pages: text as is, HTML only through nh3
"""
