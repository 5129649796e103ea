"""Sign in with Slack: OpenID Connect's authorization-code flow against Slack's endpoints.

The authorize page is `SLACK_OAUTH_URL`; `openid.connect.token` and `openid.connect.userInfo` are
Web API methods under `SLACK_API_URL`. The ID token is read from the token endpoint's answer, over
the TLS connection we opened to Slack ourselves, so its signature is not checked against Slack's
keys (OpenID Connect Core §3.1.3.7 allows this); its audience, issuer, expiry and nonce are.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from api.config import Settings

ISSUER = "https://slack.com"
SCOPES = "openid profile"
USER_CLAIM = "https://slack.com/user_id"
TEAM_CLAIM = "https://slack.com/team_id"


class SignInFailed(Exception):
    """Sign-in cannot go on; `reason` is shown to the person (it never holds a secret)."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class SlackIdentity:
    user_id: str
    team_id: str
    name: str


class SlackOpenID:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        assert settings.slack_client_id and settings.slack_client_secret
        self.client_id = settings.slack_client_id
        self.client_secret = settings.slack_client_secret.get_secret_value()
        self.authorize_url = settings.slack_oauth_url
        self.api_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
        self.redirect_uri = settings.url.rstrip("/") + "/console/auth/callback"
        self.http = http

    def authorize_redirect(self, state: str, nonce: str) -> str:
        query = urlencode({"response_type": "code", "scope": SCOPES, "client_id": self.client_id, "state": state,
                           "nonce": nonce, "redirect_uri": self.redirect_uri})
        return f"{self.authorize_url}?{query}"

    async def identify(self, code: str, nonce: str, now: datetime) -> SlackIdentity:
        """Exchange the code, check the ID token, and ask who signed in."""
        tokens = await self._call("openid.connect.token", data={
            "client_id": self.client_id, "client_secret": self.client_secret, "code": code,
            "grant_type": "authorization_code", "redirect_uri": self.redirect_uri})
        claims = _claims(tokens.get("id_token"))
        if claims.get("iss") != ISSUER or claims.get("aud") != self.client_id:
            raise SignInFailed("Slack's ID token was not issued for this console.")
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now.timestamp():
            raise SignInFailed("Slack's ID token has expired; sign in again.")
        if claims.get("nonce") != nonce:
            raise SignInFailed("The sign-in answer does not match the request this browser made; sign in again.")
        access_token = tokens.get("access_token")
        if not isinstance(access_token, str):
            raise SignInFailed("Slack did not return an access token.")
        info = await self._call("openid.connect.userInfo", headers={"Authorization": f"Bearer {access_token}"})
        user, team = info.get(USER_CLAIM), info.get(TEAM_CLAIM)
        if not isinstance(user, str) or not isinstance(team, str):
            raise SignInFailed("Slack did not say who signed in.")
        if user != claims.get(USER_CLAIM) or team != claims.get(TEAM_CLAIM):
            raise SignInFailed("Slack's answers about who signed in disagree; sign in again.")
        name = info.get("name") if isinstance(info.get("name"), str) else user
        return SlackIdentity(user, team, name)

    async def _call(self, method: str, *, data: dict[str, str] | None = None,
                    headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = await self.http.post(self.api_url + method, data=data or {}, headers=headers or {})
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(f"Slack could not be reached to finish signing in ({type(exc).__name__}).",
                               status=502) from exc
        if not isinstance(body, dict) or not body.get("ok"):
            error = body.get("error") if isinstance(body, dict) else None
            raise SignInFailed(f"Slack refused the sign-in ({error or response.status_code}); sign in again.")
        return body


def _claims(id_token: object) -> dict[str, Any]:
    """The payload of a JWT (header.payload.signature)."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        raise SignInFailed("Slack did not return an ID token.")
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise SignInFailed("Slack's ID token could not be read.") from exc
    if not isinstance(claims, dict):
        raise SignInFailed("Slack's ID token could not be read.")
    return claims
