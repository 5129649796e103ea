"""Slack's "Sign in with Slack" (OpenID Connect) endpoints, faked beside the fake Web API.

    openid = FakeSlackOpenID(client_id="1.2", client_secret="s3cret", team_id="T0TEAM")
    openid.add_user("UAPPROVER", "Dana Reviewer")
    with openid.serving(fake_slack) as base:     # base + "/api/" is SLACK_API_URL, base + AUTHORIZE_PATH
        ...                                      # is SLACK_OAUTH_URL; other /api/ methods go to fake_slack

The authorize page lists the workspace's people, each a button (the browser "signs in" as one);
`openid.connect.token` checks the client, the code (single use, expiring, bound to its
redirect_uri) and answers an ID token carrying the nonce; `openid.connect.userInfo` answers the
claims for its access token, as Slack does.
"""

import base64
import contextlib
import html
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from tests.fakes.server import serve
from tests.fakes.slack import FakeSlack

AUTHORIZE_PATH = "/openid/connect/authorize"
CODE_SECONDS = 600


@dataclass
class _Grant:
    user_id: str
    team_id: str
    nonce: str | None
    redirect_uri: str
    issued: float
    used: bool = False


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class FakeSlackOpenID:
    def __init__(self, client_id: str, client_secret: str, team_id: str = "T0TEAM") -> None:
        self.client_id, self.client_secret, self.team_id = client_id, client_secret, team_id
        self.users: dict[str, tuple[str, str]] = {}  # user id → (name, team id)
        self.grants: dict[str, _Grant] = {}
        self.tokens: dict[str, _Grant] = {}
        self.id_token_overrides: dict[str, Any] = {}  # claims to replace in the next ID tokens
        self._lock = threading.Lock()
        self.app = Starlette(routes=[
            Route(AUTHORIZE_PATH, self._authorize, methods=["GET"]),
            Route(AUTHORIZE_PATH, self._consent, methods=["POST"]),
            Route("/api/openid.connect.token", self._token, methods=["POST"]),
            Route("/api/openid.connect.userInfo", self._user_info, methods=["GET", "POST"]),
        ])

    def add_user(self, user_id: str, name: str, *, team_id: str | None = None) -> None:
        self.users[user_id] = (name, team_id or self.team_id)

    def expire_codes(self) -> None:
        """Every code issued so far is now too old to exchange."""
        with self._lock:
            for grant in self.grants.values():
                grant.issued -= CODE_SECONDS + 1

    @contextlib.contextmanager
    def serving(self, web_api: FakeSlack | None = None) -> Iterator[str]:
        """Serve these endpoints, with `web_api`'s methods under the same /api/; yields the base URL."""
        routes = [Mount("", app=self.app)] if web_api is None else [*self.app.routes, Mount("", app=web_api.app)]
        with serve(Starlette(routes=routes)) as url:
            yield url

    # -- the browser's side ---------------------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != self.client_id or query.get("response_type") != "code" \
                or "openid" not in (query.get("scope") or "").split():
            return HTMLResponse("<h1>invalid_request</h1>", status_code=400)
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in query.items())
        people = "".join(f'<button type="submit" name="user" value="{html.escape(uid)}">Continue as '
                         f'{html.escape(name)}</button>' for uid, (name, _) in self.users.items())
        return HTMLResponse(f"<!doctype html><title>Sign in to Slack</title><h1>Sign in to Fake Team</h1>"
                            f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}{people}'
                            f'<button type="submit" name="deny" value="1">Cancel</button></form>')

    async def _consent(self, request: Request) -> Response:
        form = await request.form()
        redirect_uri, state = str(form.get("redirect_uri") or ""), str(form.get("state") or "")
        if form.get("deny"):
            return RedirectResponse(f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': state})}", 302)
        user = str(form.get("user") or "")
        if user not in self.users:
            return HTMLResponse("<h1>no such user</h1>", status_code=400)
        code = self.issue_code(user, nonce=str(form.get("nonce") or "") or None, redirect_uri=redirect_uri)
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", 302)

    def issue_code(self, user_id: str, *, nonce: str | None, redirect_uri: str) -> str:
        code = "code-" + secrets.token_urlsafe(16)
        with self._lock:
            self.grants[code] = _Grant(user_id, self.users[user_id][1], nonce, redirect_uri, time.time())
        return code

    # -- the Web API methods --------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONResponse({"ok": False, "error": "invalid_client_id"})
        with self._lock:
            grant = self.grants.get(str(form.get("code") or ""))
            if grant is None or grant.used or time.time() - grant.issued > CODE_SECONDS:
                return JSONResponse({"ok": False, "error": "invalid_code"})
            if form.get("redirect_uri") != grant.redirect_uri:
                return JSONResponse({"ok": False, "error": "bad_redirect_uri"})
            grant.used = True
            access = "xoxp-" + secrets.token_urlsafe(16)
            self.tokens[access] = grant
        name, _ = self.users[grant.user_id]
        claims = {"iss": "https://slack.com", "sub": grant.user_id, "aud": self.client_id,
                  "exp": int(time.time()) + 3600, "iat": int(time.time()), "auth_time": int(time.time()),
                  "https://slack.com/user_id": grant.user_id, "https://slack.com/team_id": grant.team_id,
                  "name": name, **({"nonce": grant.nonce} if grant.nonce else {}), **self.id_token_overrides}
        id_token = f"{_b64({'alg': 'RS256', 'typ': 'JWT', 'kid': 'fake'})}.{_b64(claims)}.c2lnbmF0dXJl"
        return JSONResponse({"ok": True, "access_token": access, "token_type": "Bearer", "id_token": id_token})

    async def _user_info(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        grant = self.tokens.get(token)
        if grant is None:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        name, _ = self.users[grant.user_id]
        return JSONResponse({"ok": True, "sub": grant.user_id, "https://slack.com/user_id": grant.user_id,
                             "https://slack.com/team_id": grant.team_id, "name": name,
                             "https://slack.com/team_name": "Fake Team"})
