"""Stripe events as Stripe sends them to a webhook endpoint: built, checked against the vendored
OpenAPI spec, and signed the way Stripe signs them.

    body, headers = signed(refund_failed(fake.refunds[0]), secret)
    await api.post("/stripe/webhook", content=body, headers=headers)

The signature is computed here from Stripe's documented scheme, not with the `stripe` library the
service verifies with, so a mistake on one side is not mirrored on the other:
`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the secret>`.
"""

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from tests.fakes.stripe import SPEC_PATH, load_spec

API_VERSION = "2023-08-16"  # the vendored spec's version
_SCHEMAS = {"refund": "refund", "payout": "payout", "charge.dispute": "dispute"}


class SpecMismatch(AssertionError):
    """A built object does not fit Stripe's schema: the test would be checking a shape Stripe never sends."""


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def schema_problems(value: Any, schema: dict[str, Any], spec: dict[str, Any], path: str = "") -> list[str]:
    """Every way a JSON value breaks an OpenAPI 3.0 schema of Stripe's (types, required, enums, unknown keys)."""
    schema = _resolve(schema, spec)
    where = path or "(root)"
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null is not allowed"]
    if "anyOf" in schema:
        branches = [schema_problems(value, branch, spec, path) for branch in schema["anyOf"]]
        return [] if any(not problems for problems in branches) else [f"{where}: fits no allowed shape"]
    kind = schema.get("type")
    checks = {"string": str, "boolean": bool, "object": dict, "array": list}
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{where}: {value!r} is not an integer"]
    if kind in checks and not isinstance(value, checks[kind]):
        return [f"{where}: {value!r} is not a {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    problems: list[str] = []
    if isinstance(value, dict):
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
        problems += [f"{path}.{name}: required" for name in schema.get("required", []) if name not in value]
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is None and properties:
                problems.append(f"{path}.{key}: not a field of this object")
            elif sub is not None:
                problems += schema_problems(item, sub, spec, f"{path}.{key}")
    if isinstance(value, list):
        for index, item in enumerate(value):
            problems += schema_problems(item, schema.get("items", {}), spec, f"{path}[{index}]")
    return problems


def check_against_spec(value: dict[str, Any], schema_name: str) -> None:
    """Raise SpecMismatch when `value` is not a valid `schema_name`; nothing to check without the spec."""
    spec = load_spec(SPEC_PATH)
    if spec is None:
        return
    problems = schema_problems(value, spec["components"]["schemas"][schema_name], spec, schema_name)
    if problems:
        raise SpecMismatch("; ".join(problems))


def event(event_type: str, obj: dict[str, Any], *, created: int | None = None, livemode: bool = False,
          event_id: str | None = None) -> dict[str, Any]:
    """An `event` object whose `data.object` is checked against its own schema as well."""
    check_against_spec(obj, _SCHEMAS[event_type.rsplit(".", 1)[0]])
    built = {
        "id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": API_VERSION,
        "created": int(time.time()) if created is None else created, "data": {"object": obj},
        "livemode": livemode, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    check_against_spec(built, "event")
    return built


# -- the events the service acts on; each takes the object as the fake Stripe returned it --------------


def refund_failed(refund: dict[str, Any], *, reason: str = "expired_or_canceled_card",
                  **options: Any) -> dict[str, Any]:
    failed = {**refund, "status": "failed", "failure_reason": reason,
              "failure_balance_transaction": f"txn_{secrets.token_hex(12)}"}
    return event("refund.failed", failed, **options)


def refund_updated(refund: dict[str, Any], *, status: str, **options: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": status}
    if status in ("failed", "canceled"):
        fields["failure_reason"] = "merchant_request" if status == "canceled" else "declined"
    return event("refund.updated", {**refund, **fields}, **options)


def _payout(payout: dict[str, Any], **fields: Any) -> dict[str, Any]:
    # The fake's payouts predate `reconciliation_status`, which Stripe now always sends.
    return {"reconciliation_status": "not_applicable", **payout, **fields}


def payout_failed(payout: dict[str, Any], *, code: str = "account_closed",
                  message: str = "The bank account has been closed.", **options: Any) -> dict[str, Any]:
    failed = _payout(payout, status="failed", failure_code=code, failure_message=message,
                     failure_balance_transaction=f"txn_{secrets.token_hex(12)}")
    return event("payout.failed", failed, **options)


def payout_paid(payout: dict[str, Any], **options: Any) -> dict[str, Any]:
    return event("payout.paid", _payout(payout, status="paid", reconciliation_status="completed"), **options)


def dispute_closed(dispute: dict[str, Any], *, status: str = "won", **options: Any) -> dict[str, Any]:
    return event("charge.dispute.closed", {**dispute, "status": status}, **options)


# -- on the wire -------------------------------------------------------------------------------------


def signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def signed(built: dict[str, Any], secret: str, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery, as Stripe posts it."""
    payload = json.dumps(built, indent=2).encode()  # Stripe pretty-prints; the signature covers the bytes
    headers = {"Content-Type": "application/json; charset=utf-8",
               "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
               "Stripe-Signature": signature_header(payload, secret, timestamp=timestamp)}
    return payload, headers
