"""The admin's files in config/: agents and teams, knowledge base, and their reload.

::

    agents.py  config/agents.toml -> Directory (agents, teams, VIP senders)
    sync.py    agent rows follow the directory
    kb.py      knowledge-base articles in config/kb/*.md
    files.py   agents.toml, rules.toml and sla.toml held together and reloaded
"""
