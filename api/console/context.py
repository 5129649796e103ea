"""The console's parts, built once per app: the OpenID client, the cookies, and who is asking."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from fastapi import Request

from api.console.access import Person, role_of
from api.console.oidc import SlackOpenID
from api.console.sessions import SESSION_COOKIE, Cookies, Session

if TYPE_CHECKING:
    from api.main import Container


@dataclass(frozen=True)
class Viewer:
    """A signed-in person with a role: the session (for the CSRF token) and who they are."""

    session: Session
    person: Person


@dataclass
class Console:
    container: "Container"
    oidc: SlackOpenID
    cookies: Cookies
    _workspace: str | None = field(default=None)

    @classmethod
    def build(cls, container: "Container") -> "Console":
        settings = container.settings
        return cls(container, SlackOpenID(settings, container.http), Cookies(settings), settings.slack_team_id)

    async def workspace(self) -> str | None:
        """The Slack workspace whose members may sign in: SLACK_TEAM_ID, else the bot token's (auth.test)."""
        if self._workspace is None:
            settings = self.container.settings
            if settings.slack_bot_token is None:
                return None
            try:
                response = await self.container.http.post(
                    self.oidc.api_url + "auth.test",
                    headers={"Authorization": f"Bearer {settings.slack_bot_token.get_secret_value()}"})
                body = response.json()
            except (httpx.HTTPError, ValueError):
                return None  # not cached: asked again on the next sign-in
            team = body.get("team_id") if isinstance(body, dict) and body.get("ok") else None
            self._workspace = team if isinstance(team, str) else None
        return self._workspace

    async def session(self, request: Request) -> Session | None:
        """The signed session cookie, if it is ours, current, and of our workspace."""
        session = self.cookies.read_session(request.cookies.get(SESSION_COOKIE))
        if session is None or session.team_id != await self.workspace():
            return None
        return session

    async def viewer(self, session: Session) -> Viewer | None:
        role = await role_of(session.user_id, self.container.settings, self.container.authority)
        return Viewer(session, Person(session.user_id, session.name, role)) if role else None
