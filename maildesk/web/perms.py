"""Who may see what. An agent sees the tickets of their teams (and of the teams they lead)
and those assigned to them; an admin (``role = "admin"`` or ``admins = [...]`` in
agents.toml) sees every ticket. Reports: admins any team's and the whole desk's, a team
lead their teams'. Anything else answers 404, as if it did not exist."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from maildesk.storage.models import Agent as AgentRow
from maildesk.storage.models import Ticket

__all__ = ["Viewer", "viewer_for"]


@dataclass(frozen=True)
class Viewer:
    agent: object  # maildesk.policy.agents.Agent
    teams: tuple[str, ...]
    led: tuple[str, ...]
    admin: bool

    @property
    def login(self) -> str:
        return self.agent.login

    def can_see(self, ticket: Ticket) -> bool:
        if self.admin:
            return True
        return (ticket.team is not None and ticket.team in self.teams) or (ticket.assignee is not None and ticket.assignee.login == self.login)

    def visible(self):
        """The SQL condition for the tickets this viewer may see."""
        if self.admin:
            return True
        mine = Ticket.assignee_id.in_(select(AgentRow.id).where(AgentRow.login == self.login))
        return or_(Ticket.team.in_(self.teams), mine) if self.teams else mine

    def report_teams(self, directory) -> list[str | None]:
        """The reports this viewer may read: None is the whole desk's."""
        if self.admin:
            return [None, *(t.name for t in directory.teams)]
        return list(self.led)

    def may_team(self, team: str | None) -> bool:
        return self.admin or (team is not None and team in self.teams)


def viewer_for(directory, login: str | None) -> Viewer | None:
    agent = directory.agent(login) if directory is not None and login else None
    if agent is None:
        return None
    led = tuple(t.name for t in directory.teams if t.lead == agent.login)
    teams = tuple(dict.fromkeys((*agent.teams, *led)))
    return Viewer(agent, teams, led, agent.is_admin)


