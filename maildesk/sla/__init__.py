"""Service levels: business hours, the policies of config/sla.toml, deadlines on tickets.

::

    businesshours.py  open time between two instants in a desk's calendar
    config.py         config/sla.toml -> SlaConfig (policies, escalation steps, selection)
    deadlines.py      the pure math: deadlines, state, escalation, the customer's promise
    clock.py          SLA bookkeeping on the ticket row: policy, stored deadlines, pauses
"""
