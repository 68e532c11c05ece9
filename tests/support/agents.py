"""The agents directory (config/agents.toml) that most tests share.

By default two agents, alice and bob, in team ``support`` led by alice. Tests that need a
variation say only what differs::

    agents_toml()                                    # alice and bob, team support, lead alice
    agents_toml(ALICE, BOB, CAROL)                   # carol (another domain) in the team too
    agents_toml(bob={"notify_opt_out": ["new_ticket"]})
    agents_toml(teams=[SUPPORT, {"name": "billing", "members": ["bob"]}], bob={"teams": ["support", "billing"]})
"""

from __future__ import annotations

import json

__all__ = ["AGENTS", "ALICE", "BOB", "CAROL", "SUPPORT", "agents_toml"]

ALICE = {"login": "alice", "name": "Alice Agent", "address": "alice@example.test", "teams": ["support"]}
BOB = {"login": "bob", "name": "Bob Builder", "address": "bob@example.test", "teams": ["support"]}
CAROL = {"login": "carol", "name": "Carol Partner", "address": "carol@partner.test", "teams": ["support"]}
SUPPORT = {"name": "support", "lead": "alice"}  # members: every agent that lists the team


def _table(header: str, keys: dict) -> str:
    return f"[[{header}]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in keys.items())


def agents_toml(*agents: dict, teams: list[dict] | tuple[dict, ...] = (SUPPORT,), **changes: dict) -> str:
    """agents.toml text for ``agents`` (default alice and bob). ``changes`` maps a login to
    keys that replace or add to that agent's (``bob={"available": False}``). A team without
    ``members`` gets every agent whose ``teams`` names it."""
    chosen = [{**agent, **changes.pop(agent["login"], {})} for agent in (agents or (ALICE, BOB))]
    if changes:
        raise ValueError(f"no agent with login {sorted(changes)} to change")
    tables = [_table("agents", agent) for agent in chosen]
    for team in teams:
        members = team.get("members") or [a["login"] for a in chosen if team["name"] in a.get("teams", ())]
        tables.append(_table("teams", {"name": team["name"], "members": members, **{k: v for k, v in team.items() if k not in ("name", "members")}}))
    return "\n".join(tables)


AGENTS = agents_toml()
