"""Tickets as data: the state changes every stage makes, and read-only views of them.

::

    state.py   contacts, tickets, messages, events: plain functions over a session
    views.py   tickets, inbox and outbox rows as plain dicts (JSON, tables)
    search.py  the filters of ``maildesk tickets list`` as one query; full-text search
"""
