"""Mail maildesk sends: composed and queued in the caller's transaction, delivered later.

::

    mailer.py     render, compose and queue one mail about a ticket
    render.py     Jinja2 templates -> (subject, text, html)
    mailbuild.py  wire bytes: safe headers, threading headers, Message-IDs
    tokens.py     signed reply addresses and VERP bounce addresses
    notify.py     who among the agents hears about what
    notices.py    notifications decided by processing, rendered by the delivery worker
    fanout.py     how many notifications one inbound mail may cause
    digest.py     held notifications, one mail per recipient per window
    lifecycle.py  resolved / closed / merged notices to the customer
    statuslinks.py the signed links to a customer's status page, and their revocation (key rotation)
    outbox.py     the durable outbox: claim, deliver, record, retry
    deliver.py    the smarthost (SMTP, STARTTLS/TLS, AUTH) or a local maildir
"""
