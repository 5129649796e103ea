"""Stripe's wire as the fake speaks it: form bodies in bracket notation, parameters checked against
the operation in Stripe's OpenAPI spec, Stripe's error shape."""

import functools
import json
import re
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).resolve().parents[4] / "shared" / "vendor" / "stripe" / "spec3.json"

# Used only when the spec is absent: the top-level parameters of each operation served here.
BUILT_IN_PARAMETERS = {
    ("POST", "/v1/refunds"): {"amount", "charge", "currency", "customer", "expand", "instructions_email",
                              "metadata", "origin", "payment_intent", "reason", "refund_application_fee",
                              "reverse_transfer"},
    ("GET", "/v1/refunds"): {"charge", "created", "ending_before", "expand", "limit", "payment_intent",
                             "starting_after"},
    ("POST", "/v1/payouts"): {"amount", "currency", "description", "destination", "expand", "metadata",
                              "method", "source_type", "statement_descriptor"},
    ("DELETE", "/v1/subscriptions/{subscription_exposed_id}"): {"cancellation_details", "expand",
                                                               "invoice_now", "prorate"},
    ("POST", "/v1/subscriptions/{subscription_exposed_id}"): {
        "cancel_at_period_end", "cancellation_details", "description", "expand", "items", "metadata",
        "pause_collection", "proration_behavior", "proration_date"},
    ("POST", "/v1/disputes/{dispute}"): {"evidence", "expand", "metadata", "submit"},
    ("POST", "/v1/disputes/{dispute}/close"): {"expand"},
}

@functools.cache
def load_spec(path: Path) -> dict[str, Any] | None:
    """Stripe's OpenAPI document (1.5 MB): read on first use, once per process."""
    return json.loads(path.read_text()) if path.exists() else None


class StripeErrorResponse(Exception):
    def __init__(self, status: int, type: str, message: str, *, code: str | None = None,
                 param: str | None = None, saved: bool = True, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.saved = saved  # whether Stripe would keep this result under the idempotency key
        error = {"type": type, "message": message, "code": code, "param": param, **extra}
        self.body = {"error": {k: v for k, v in error.items() if v is not None}}


def invalid(message: str, *, code: str | None = None, param: str | None = None, status: int = 400,
            saved: bool = True) -> StripeErrorResponse:
    return StripeErrorResponse(status, "invalid_request_error", message, code=code, param=param,
                               saved=saved)


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    api_key: str | None
    status: int = 0
    replayed: bool = False


@dataclass
class _Saved:
    endpoint: str
    params: dict[str, Any]
    status: int
    body: dict[str, Any]
    request_id: str


def new_id(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(24))


def parse_brackets(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`items[0][id]=si_1&expand[]=x` → `{"items": [{"id": "si_1"}], "expand": ["x"]}`."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", raw_key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))] if match else [raw_key]
        node = root
        for part in parts[:-1]:
            key = part or str(len(node))
            node = node.setdefault(key, {})
        node[parts[-1] or str(len(node))] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = {key: _listify(value) for key, value in node.items()}
    if node and all(key.isdigit() for key in node):
        return [node[key] for key in sorted(node, key=int)]
    return node


# -- checking parameters against the spec ------------------------------------------------------------


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _fits_shape(value: Any, schema: dict[str, Any]) -> bool:
    """Whether an anyOf branch is the one meant for a value of this shape (for its error)."""
    kind = schema.get("type")
    if isinstance(value, dict):
        return kind == "object"
    if isinstance(value, list):
        return kind == "array"
    return kind not in ("object", "array")


def find_problem(value: Any, schema: dict[str, Any], spec: dict[str, Any],
                 path: str) -> StripeErrorResponse | None:
    """The first way `value` breaks `schema`, as Stripe words it; None when it fits."""
    schema = _resolve(schema, spec)
    if "anyOf" in schema:
        branches = [_resolve(branch, spec) for branch in schema["anyOf"]]
        problems = [find_problem(value, branch, spec, path) for branch in branches]
        if any(problem is None for problem in problems):
            return None
        same_shape = [problem for branch, problem in zip(branches, problems, strict=True)
                      if _fits_shape(value, branch)]
        return (same_shape or problems)[0]
    kind = schema.get("type")
    if isinstance(value, dict):
        if kind not in ("object", None):
            return invalid(f"Invalid {kind}: {path} must not be a hash", param=path, saved=False)
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name in schema.get("required", []):
            if name not in value:
                full = f"{path}[{name}]" if path else name
                return invalid(f"Missing required param: {full}.", code="parameter_missing", param=full,
                               saved=False)
        for key, item in value.items():
            full = f"{path}[{key}]" if path else key
            if key in properties:
                sub = properties[key]
            elif isinstance(extra, dict):
                sub = extra
            elif properties or extra is False:
                return invalid(f"Received unknown parameter: {full}", code="parameter_unknown",
                               param=full, saved=False)
            else:
                continue
            problem = find_problem(item, sub, spec, full)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        if kind != "array":
            return invalid(f"Invalid {kind or 'value'}: {path} must not be an array", param=path,
                           saved=False)
        for index, item in enumerate(value):
            problem = find_problem(item, schema.get("items", {}), spec, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if kind in ("object", "array"):
        return invalid(f"Invalid {'hash' if kind == 'object' else 'array'}", param=path, saved=False)
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        return invalid(f"Invalid integer: {value}", code="parameter_invalid_integer", param=path,
                       saved=False)
    if kind == "boolean" and value not in ("true", "false"):
        return invalid(f"Invalid boolean: {value}", param=path, saved=False)
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(str(choice) for choice in schema["enum"] if choice != "")
        return invalid(f"Invalid {path}: must be one of {choices}", param=path, saved=False)
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return invalid(f"Invalid {path}: must be at most {schema['maxLength']} characters", param=path,
                       saved=False)
    return None

