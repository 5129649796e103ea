"""Sign in with Slack, and sign out."""

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.console import signin_audit
from api.console.context import Console
from api.console.gate import form_sender, refused_page
from api.console.oidc import SignInFailed, SlackIdentity
from api.console.pages import secure
from api.console.sessions import SESSION_COOKIE, SESSION_HOURS, SIGN_IN_MINUTES, STATE_COOKIE, safe_next

log = logging.getLogger(__name__)


def register(router: APIRouter, console: Console) -> None:
    cookies = console.cookies

    @router.get("/login")
    async def login(next: str | None = None) -> Response:
        target = safe_next(next)
        if target is None:
            return refused_page(None, "That sign-in link would send you to another site afterwards, so it was "
                                      "refused. Open the console from its own address.", status=400)
        sign_in, cookie = cookies.new_sign_in(target)
        response = RedirectResponse(console.oidc.authorize_redirect(sign_in.state, sign_in.nonce), status_code=303)
        response.set_cookie(STATE_COOKIE, cookie, **cookies.options(SIGN_IN_MINUTES * 60))
        return secure(response)

    @router.get("/auth/callback")
    async def callback(request: Request, code: str | None = None, state: str | None = None,
                       error: str | None = None) -> Response:
        sign_in = cookies.read_sign_in(request.cookies.get(STATE_COOKIE))
        identity: SlackIdentity | None = None  # set once Slack has said who this is
        try:
            if sign_in is None:
                raise SignInFailed("This sign-in was not started from this browser, or took too long. "
                                   "Sign in again.")
            if state is None or not _same(state, sign_in.state):
                raise SignInFailed("The sign-in answer does not match the request this browser made "
                                   "(state mismatch); nothing was signed in. Sign in again.")
            if error is not None:
                raise SignInFailed("Slack did not sign you in (you may have cancelled); sign in again.")
            if not code or len(code) > 500:
                raise SignInFailed("Slack's answer had no code; sign in again.")
            identity = await console.oidc.identify(code, sign_in.nonce, console.container.clock())
            workspace = await console.workspace()
            if workspace is None:
                raise SignInFailed("The console cannot tell which Slack workspace may sign in right now; "
                                   "try again in a moment.", status=503)
            if identity.team_id != workspace:
                raise SignInFailed("You signed in to another Slack workspace; only members of this "
                                   "deployment's workspace may use the console.", status=403)
        except SignInFailed as failure:
            log.info("console sign-in refused (%s): %s", failure.status, failure.reason)
            if identity is not None and failure.status == 403:  # named by Slack, of another workspace
                await signin_audit.refused(console.container.db, identity.user_id, identity.name,
                                           identity.team_id, "another Slack workspace")
            response = refused_page(None, failure.reason, status=failure.status)
            response.delete_cookie(STATE_COOKIE, path="/console")
            return response
        session, cookie = cookies.new_session(identity.user_id, identity.team_id, identity.name)
        viewer = await console.viewer(session)
        if viewer is None:
            log.info("console sign-in refused: %s is neither an approver nor a viewer", identity.user_id)
            await signin_audit.refused(console.container.db, identity.user_id, identity.name, identity.team_id,
                                       "neither an approver nor a viewer")
            response = refused_page(identity.name, "You are a member of the workspace, but neither an approver "
                                                   "nor listed in CHEQPOINT_VIEWERS, so the console is closed "
                                                   "to you.")
            response.delete_cookie(STATE_COOKIE, path="/console")
            return response
        log.info("console: %s signed in as %s", identity.user_id, viewer.person.role)
        await signin_audit.signed_in(console.container.db, identity.user_id, identity.name, identity.team_id,
                                     viewer.person.role)
        response = RedirectResponse(sign_in.next, status_code=303)  # checked by safe_next when it was stored
        response.set_cookie(SESSION_COOKIE, cookie, **cookies.options(SESSION_HOURS * 3600))
        response.delete_cookie(STATE_COOKIE, path="/console")
        return secure(response)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        sent = await form_sender(console, request)
        if isinstance(sent, Response):
            return sent  # no session or no valid CSRF token: nobody signed out, nothing recorded
        viewer, _ = sent
        await signin_audit.signed_out(console.container.db, viewer.person.user_id, viewer.person.name)
        response = RedirectResponse("/console", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/console")
        return secure(response)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
