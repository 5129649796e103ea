"""Every console page and form passes here: a valid session of our workspace, a role, and for forms
the CSRF token of that session."""

from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from fastapi.responses import Response

from api.console.context import Console, Viewer
from api.console.pages import page

MAX_FIELDS = 100


def sign_in_page(request: Request, *, status: int = 401, message: str | None = None) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return page("signin.html", {"login": "/console/login?" + urlencode({"next": target}), "message": message,
                                "me": None}, status=status)


def refused_page(viewer_name: str | None, message: str, *, status: int = 403) -> Response:
    return page("refused.html", {"message": message, "me": None, "name": viewer_name}, status=status)


async def reader(console: Console, request: Request) -> Viewer | Response:
    """Someone who may read, or the response that turns them away."""
    session = await console.session(request)
    if session is None:
        return sign_in_page(request)
    viewer = await console.viewer(session)
    if viewer is None:
        return refused_page(session.name, "You are signed in, but you are neither an approver nor listed in "
                                          "CHEQPOINT_VIEWERS, so the console is closed to you.")
    return viewer


async def read_form(request: Request) -> dict[str, str] | None:
    """A browser form's fields (application/x-www-form-urlencoded, the only kind the console sends);
    the first value of each name. None for any other body. The body's size is already capped."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


async def form_sender(console: Console, request: Request) -> tuple[Viewer, dict[str, str]] | Response:
    """A form post from a signed-in person whose CSRF token matches their session."""
    session = await console.session(request)
    if session is None:
        # A post without a valid session is never a redirect to sign in: the form's data would be lost
        # or, worse, replayed after a sign-in the person did not mean to make.
        return sign_in_page(request, status=403, message="Your session has ended; sign in again and "
                                                         "repeat what you were doing. Nothing was recorded.")
    form = await read_form(request)
    if form is None:
        return refused_page(session.name, "That form could not be read; nothing was recorded.", status=400)
    if not session.csrf_matches(form.get("csrf")):
        return refused_page(session.name, "This form was not sent from a page of this console (its security "
                                          "token is missing or wrong); nothing was recorded. Reload the page "
                                          "and try again.")
    viewer = await console.viewer(session)
    if viewer is None:
        return refused_page(session.name, "You may not use the console; nothing was recorded.")
    return viewer, form
