"""Console sessions and sign-in state, in signed cookies; CSRF tokens; safe redirect targets.

A session cookie holds who signed in (Slack user and workspace), their name and the CSRF token of
their forms, signed with `CHEQPOINT_SESSION_SECRET` and dated: it cannot be forged or altered, and
expires after `SESSION_HOURS`. What the person may do is not stored in it; it is asked of the
current configuration on every request, so someone removed loses access at once.
"""

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

from api.config import Settings

SESSION_COOKIE = "cheqpoint_console"
STATE_COOKIE = "cheqpoint_signin"
SESSION_HOURS = 12
SIGN_IN_MINUTES = 10


@dataclass(frozen=True)
class Session:
    user_id: str
    team_id: str
    name: str
    csrf: str

    def csrf_matches(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), str(token).encode())


@dataclass(frozen=True)
class SignIn:
    """What the browser started a sign-in with: checked when Slack sends it back."""

    state: str
    nonce: str
    next: str


class Cookies:
    def __init__(self, settings: Settings) -> None:
        assert settings.console_session_secret is not None
        secret = settings.console_session_secret.get_secret_value()
        self._sessions = URLSafeTimedSerializer(secret, salt="cheqpoint.console.session")
        self._sign_ins = URLSafeTimedSerializer(secret, salt="cheqpoint.console.sign-in")
        # Cookies are Secure except when the console is served over plain http on this machine's
        # loopback (development and tests), where a browser would otherwise never send them back.
        url = urlsplit(settings.url)
        self.secure = not (url.scheme == "http" and url.hostname in ("127.0.0.1", "localhost", "::1"))

    def options(self, max_age: int) -> dict[str, object]:
        return {"max_age": max_age, "httponly": True, "secure": self.secure, "samesite": "lax", "path": "/console"}

    def new_session(self, user_id: str, team_id: str, name: str) -> tuple[Session, str]:
        session = Session(user_id, team_id, name, secrets.token_urlsafe(32))
        return session, self._sessions.dumps({"u": user_id, "t": team_id, "n": name, "c": session.csrf})

    def read_session(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=SESSION_HOURS * 3600)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "utnc"):
            return None
        return Session(data["u"], data["t"], data["n"], data["c"])

    def new_sign_in(self, next_path: str) -> tuple[SignIn, str]:
        sign_in = SignIn(secrets.token_urlsafe(24), secrets.token_urlsafe(24), next_path)
        return sign_in, self._sign_ins.dumps({"s": sign_in.state, "n": sign_in.nonce, "x": next_path})

    def read_sign_in(self, cookie: str | None) -> SignIn | None:
        if not cookie:
            return None
        try:
            data = self._sign_ins.loads(cookie, max_age=SIGN_IN_MINUTES * 60)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "snx"):
            return None
        return SignIn(data["s"], data["n"], data["x"])


def safe_next(target: str | None) -> str | None:
    """A page of this console to return to after signing in, or None for anything else.

    Only a path under /console is taken: no scheme, no host, no `//` or backslash a browser would
    read as another site, no control characters.
    """
    if not target:
        return "/console"
    if any(ord(ch) < 0x20 or ch == "\\" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    if not (parts.path == "/console" or parts.path.startswith("/console/")) or ".." in parts.path.split("/"):
        return None
    return target
