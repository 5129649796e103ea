"""The gate in front of Bolt at `POST /slack/events`: only well-formed, signed requests get through.

Bolt would verify the signature itself, but it logs the raw body of every request that fails (so
anyone could write lines into our log), and it turns a non-numeric timestamp, a body of `{`, invalid
UTF-8 or JSON nested thousands deep into an exception and a 500. Here the request is checked first,
in a bounded amount of work, and refused with 401 (not from Slack) or 400 (from Slack but not
something Slack sends); a refusal is logged as one short line that carries nothing the sender wrote.
"""

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

log = logging.getLogger(__name__)

# Slack refuses requests older than five minutes; so do we (replays of a captured request).
MAX_AGE_SECONDS = 5 * 60
# Slack's payloads nest a dozen levels or so (views with rich text); far more is not from Slack.
MAX_DEPTH = 64
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str  # ours, never the sender's words: it is logged and answered


def _deeper_than(value: object, limit: int) -> bool:
    """Whether parsed JSON nests deeper than `limit`, walked without recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _json_object(text: str, what: str) -> Refusal | None:
    try:
        # The C parser refuses nesting past the interpreter's recursion limit with RecursionError.
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return Refusal(400, f"{what} is not valid JSON")
    if not isinstance(parsed, dict):
        return Refusal(400, f"{what} is not a JSON object")
    if _deeper_than(parsed, MAX_DEPTH):
        return Refusal(400, f"{what} nests deeper than {MAX_DEPTH} levels")
    return None


def check_signature(secret: str, body: bytes, timestamp: str | None, signature: str | None,
                    now: Callable[[], float] = time.time) -> Refusal | None:
    """Slack's v0 signature over `v0:{timestamp}:{body}`, and a fresh timestamp."""
    if not secret:
        return Refusal(401, "no signing secret is configured")  # an empty HMAC key proves nothing
    if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
        return Refusal(401, "missing or non-numeric X-Slack-Request-Timestamp")
    if abs(now() - int(timestamp)) > MAX_AGE_SECONDS:
        return Refusal(401, "X-Slack-Request-Timestamp is not within five minutes")
    if signature is None or not _SIGNATURE.fullmatch(signature):
        return Refusal(401, "missing or malformed X-Slack-Signature")
    expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(f"v0={expected}", signature):
        return Refusal(401, "the signature does not match")
    return None


def check_shape(body: bytes, content_type: str) -> Refusal | None:
    """A signed body that Bolt can read: UTF-8, and either a JSON object (Events API) or a form whose
    one `payload` field holds a JSON object (interactivity). Cheqpoint has no slash commands."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "the body is not UTF-8")
    media = content_type.split(";", 1)[0].strip().lower()
    # Bolt reads a body that starts with `{` as JSON whatever its content type; so does this check.
    if media == "application/json" or text.startswith("{"):
        return _json_object(text, "the body")
    if media != "application/x-www-form-urlencoded":
        return Refusal(400, "unsupported content type")
    try:
        form = parse_qs(text, strict_parsing=True, max_num_fields=10)
    except ValueError:
        return Refusal(400, "the body is not a form")
    payloads = form.get("payload") or []
    if len(payloads) != 1:
        return Refusal(400, "the form has no single payload field")
    return _json_object(payloads[0], "the payload")


def check(secret: str, body: bytes, headers: Mapping[str, str]) -> Refusal | None:
    """Signature first (an unsigned body is never looked into), then the shape."""
    refusal = check_signature(secret, body, headers.get("x-slack-request-timestamp"),
                              headers.get("x-slack-signature"))
    return refusal or check_shape(body, headers.get("content-type", ""))
