"""From a Cheqpoint-style body to the native `ApprovalCreate`, and the compat error shape.

One approval service serves both APIs; this module only reshapes what Cheqpoint's clients send so
the service can take it. Everything it refuses is answered `{"error": …}` by the routes.
"""

import json
import re
from typing import Any

from pydantic import ValidationError

from api.approvals.schemas import ApprovalCreate
from api.approvals.service import Intake
from api.compat.schemas import CompatCreate
from api.errors import AppError, ValidationFailed

RISK_LEVELS = ("low", "medium", "high", "critical")


def risk_level_for(score: float) -> str:
    """CONTRACT §3b's mapping of Cheqpoint's 0–1 risk score onto our risk levels."""
    if score >= 0.85:
        return "high"
    return "medium" if score >= 0.4 else "low"


def normalise_action(action: str) -> str:
    """`sendEmail`, `Send Email` and `send-email` all become `send_email`, the catalogue's spelling.

    Cheqpoint's clients let agents name actions freely; the native API takes snake_case names only.
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", action.strip())
    return re.sub(r"[^a-z0-9_.:]+", "_", spaced.lower()).strip("_")


def _flat_metadata(metadata: dict[str, Any] | None) -> dict[str, str] | None:
    """Our metadata is a flat object of strings: scalars are written as text, nested values refused."""
    if metadata is None:
        return None
    flat: dict[str, str] = {}
    for key, value in metadata.items():
        if isinstance(value, dict | list):
            raise ValidationFailed(f"metadata.{key} must be a string, number or boolean, not a nested value")
        if value is not None:
            flat[key] = value if isinstance(value, str) else json.dumps(value)
    return flat


def _risk_level(body: CompatCreate) -> str | None:
    if body.risk_score is not None and not 0 <= body.risk_score <= 1:
        raise ValidationFailed(f"riskScore must be between 0 and 1, not {body.risk_score}")
    if body.risk_level is not None:
        level = body.risk_level.strip().lower()
        if level not in RISK_LEVELS:
            raise ValidationFailed(f"riskLevel must be one of {', '.join(RISK_LEVELS)}, not {body.risk_level!r}")
        return level
    return risk_level_for(body.risk_score) if body.risk_score is not None else None


def to_intake(body: CompatCreate, idempotency_key: str | None) -> Intake:
    """The native request this body means: decide-only unless it says `"execute": true`."""
    fields: dict[str, Any] = {
        "action": normalise_action(body.action),
        "summary": body.summary,
        "details": body.details,
        "justification": body.justification,
        "callback_url": body.callback_url or body.webhook_url,
        "execute": bool(body.execute),
        "risk_level": _risk_level(body),
        "priority": body.priority.strip().lower() if body.priority else None,
        "agent_name": body.agent_name,
        "metadata": _flat_metadata(body.metadata),
    }
    try:
        native = ApprovalCreate.model_validate(fields)
    except ValidationError as exc:
        raise ValidationFailed("the request does not fit the API", errors=[
            {"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]) from None
    # Shown to reviewers, never interpreted: Cheqpoint's score and the agent's reasoning trace.
    extra = {k: v for k, v in (("riskScore", body.risk_score), ("trace", body.trace)) if v is not None}
    return Intake(native, idempotency_key=idempotency_key, surface="compat", extra=extra)


def _field(loc: list[Any]) -> str:
    names = {"callback_url": "callbackUrl", "risk_level": "riskLevel", "agent_name": "agentName"}
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(names.get(p, p) for p in parts)


def error_message(detail: str, errors: list[dict[str, Any]] | None) -> str:
    """One line for `{"error": …}`: the problem, then each field and what is wrong with it."""
    if not errors:
        return detail
    fields = "; ".join(f"{_field(e.get('loc', []))}: {e.get('msg')}" if e.get("loc") else str(e.get("msg"))
                       for e in errors)
    return f"{detail}: {fields}"


def app_error_status(exc: AppError) -> int:
    """Cheqpoint answers bad input with 400; other statuses (401, 404, 409, 503…) carry over."""
    return 400 if isinstance(exc, ValidationFailed) else exc.status
