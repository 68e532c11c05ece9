"""What an accepted mail does to the tickets: the processing stage.

:mod:`.pipeline` claims pending inbox rows and parses each once; :mod:`.inbound` runs the
inbound stages in the order its ``STAGES`` table lists (docs/pipeline.md); :mod:`.agentmail`
handles an authenticated agent's mail, :mod:`.customermail` everyone else's; the rest are
the decisions those stages consult.

::

    pipeline.py     pending inbox rows -> parsed messages -> one savepoint each
    inbound.py      STAGES, the ordered inbound stages (own mail, duplicate, bounce, token, thread, survey, ...)
    agentmail.py    an agent's reply: #commands, internal notes, relayed replies
    customermail.py a customer's mail: new ticket, reply, unverified mail; acknowledgement, notifications
    correlate.py    which ticket a message belongs to, and whether it proves it
    authz.py        who sent this (topmost trusted Authentication-Results)
    autoreply.py    loop guards: may we answer automatically?
    backscatter.py  no automatic replies to forged senders
    bounces.py      bounces that prove themselves (VERP)
    decisions.py    routing: the rules' Decision applied to a ticket
    commands.py     ``#word args`` lines (pure parsing)
    survey.py       satisfaction answers by mail
    claim.py        inbox rows claimed before parsing, across instances (PostgreSQL advisory try-locks)
    threadlock.py   per-thread serialization across instances (PostgreSQL)
    unassigned.py   when routing asked for an assignee and nobody could take it
    outcome.py      what processing did with one message, as a value
"""
