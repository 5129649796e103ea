"""A fake Stripe API for tests: real HTTP on a loopback port, Stripe's wire format, Stripe's refusals.

    with FakeStripe() as fake:                       # serves on 127.0.0.1:0; fake.url is the base
        charge = fake.add_charge(amount=34900, currency="usd")
        gateway = StripeGateway("sk_test_123", fake.url)
        ...
        assert fake.refunds[0]["amount"] == 17450
        assert fake.last("POST", "/v1/refunds").params == {"charge": charge["id"], "amount": "17450"}

What it holds to, because our code must survive real Stripe:
- `Authorization: Bearer sk_…` (or `rk_…`; or one of `api_keys`) on every request, else 401.
- Form bodies (and DELETE/GET query strings) in Stripe's bracket notation, checked against the
  operation's parameters in Stripe's OpenAPI spec (`shared/vendor/stripe/spec3.json`, read once):
  unknown parameters, missing required ones, bad integers, booleans and enums are refused with
  Stripe's error shape. Without the spec, a built-in list of top-level names is checked instead.
- `Idempotency-Key` on POSTs as Stripe honours it: the first result for a key is saved (errors
  from the endpoint's own rules included, parameter errors not) and replayed with
  `Idempotent-Replayed: true`; the same key with other parameters or another endpoint is a 400
  `idempotency_error`. Injected faults stand for failures in front of Stripe and are not saved.
- Refund rules: never more than what is still refundable (`amount_too_large`), nothing on a fully
  refunded charge (`charge_already_refunded`); payouts need the available balance.

Every request is recorded in `fake.requests` (parsed parameters, key, status, replayed).
"""

import asyncio
import contextlib
import functools
import json
import re
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import serve

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "vendor" / "stripe" / "spec3.json"

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


# -- objects shaped like Stripe's (see shared/vendor/stripe/fixtures3.json) ---------------------------


def _list(data: list[dict[str, Any]], url: str, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def charge_object(amount: int, currency: str, *, customer: str | None, captured: bool,
                  payment_intent: str | None, livemode: bool) -> dict[str, Any]:
    charge_id = new_id("ch_")
    return {
        "id": charge_id, "object": "charge", "amount": amount,
        "amount_captured": amount if captured else 0, "amount_refunded": 0,
        "balance_transaction": new_id("txn_"), "captured": captured, "created": int(time.time()),
        "currency": currency, "customer": customer, "description": None, "disputed": False,
        "livemode": livemode, "metadata": {}, "paid": True, "payment_intent": payment_intent,
        "payment_method": new_id("pm_"), "refunded": False,
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242",
                                                            "exp_month": 8, "exp_year": 2030}},
        "refunds": _list([], f"/v1/charges/{charge_id}/refunds"), "status": "succeeded",
    }


def subscription_object(customer: str, items: list[dict[str, Any]], currency: str,
                        status: str, livemode: bool) -> dict[str, Any]:
    subscription_id = new_id("sub_")
    now = int(time.time())
    data = [{
        "id": new_id("si_"), "object": "subscription_item", "created": now, "metadata": {},
        "price": _price(item.get("price") or new_id("price_"), currency, item.get("unit_amount", 2000)),
        "quantity": item.get("quantity", 1), "subscription": subscription_id, "tax_rates": [],
    } for item in items]
    return {
        "id": subscription_id, "object": "subscription", "billing_cycle_anchor": now,
        "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically", "created": now, "currency": currency,
        "current_period_end": now + 30 * 86400, "current_period_start": now, "customer": customer,
        "ended_at": None, "items": _list(data, f"/v1/subscription_items?subscription={subscription_id}"),
        "latest_invoice": None, "livemode": livemode, "metadata": {}, "pause_collection": None,
        "start_date": now, "status": status,
    }


def _price(price_id: str, currency: str, unit_amount: int) -> dict[str, Any]:
    return {"id": price_id, "object": "price", "active": True, "currency": currency,
            "product": new_id("prod_"), "recurring": {"interval": "month", "interval_count": 1,
                                                      "usage_type": "licensed"},
            "type": "recurring", "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount)}


def dispute_object(charge: str, amount: int, currency: str, reason: str, status: str,
                   livemode: bool) -> dict[str, Any]:
    return {
        "id": new_id("dp_"), "object": "dispute", "amount": amount, "balance_transactions": [],
        "charge": charge, "created": int(time.time()), "currency": currency, "evidence": {},
        "evidence_details": {"due_by": int(time.time()) + 7 * 86400, "has_evidence": False,
                             "past_due": False, "submission_count": 0},
        "is_charge_refundable": False, "livemode": livemode, "metadata": {}, "payment_intent": None,
        "reason": reason, "status": status,
    }


class FakeStripe:
    def __init__(self, *, api_keys: set[str] | None = None, spec_path: Path | None = SPEC_PATH) -> None:
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "DELETE"])])
        self.url: str | None = None
        self.api_keys = api_keys
        self.spec_path = spec_path
        self.charges: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.refunds: list[dict[str, Any]] = []
        self.payouts: list[dict[str, Any]] = []
        self.available: dict[str, int] = {"usd": 10_000_000}
        self.requests: list[RecordedRequest] = []
        self.livemode = False
        self._lock = threading.RLock()  # the server runs in its own thread
        self._faults: deque[StripeErrorResponse] = deque()
        self._card_errors: deque[StripeErrorResponse] = deque()
        self._delays: deque[float] = deque()
        self._saved: dict[tuple[str | None, str], _Saved] = {}
        self._routes: list[tuple[str, str, re.Pattern[str], Callable[..., dict[str, Any]]]] = [
            (method, template, re.compile(re.sub(r"\{[^}]+\}", r"([^/]+)", template) + "$"), handler)
            for method, template, handler in (
                ("POST", "/v1/refunds", self._create_refund),
                ("GET", "/v1/refunds", self._list_refunds),
                ("GET", "/v1/refunds/{refund}", self._retrieve_refund),
                ("POST", "/v1/payouts", self._create_payout),
                ("GET", "/v1/balance", self._retrieve_balance),
                ("GET", "/v1/charges/{charge}", self._retrieve_charge),
                ("GET", "/v1/payment_intents/{intent}", self._retrieve_payment_intent),
                ("GET", "/v1/subscriptions/{subscription_exposed_id}", self._retrieve_subscription),
                ("POST", "/v1/subscriptions/{subscription_exposed_id}", self._update_subscription),
                ("DELETE", "/v1/subscriptions/{subscription_exposed_id}", self._cancel_subscription),
                ("GET", "/v1/disputes/{dispute}", self._retrieve_dispute),
                ("POST", "/v1/disputes/{dispute}", self._update_dispute),
                ("POST", "/v1/disputes/{dispute}/close", self._close_dispute),
            )
        ]

    # -- running ------------------------------------------------------------------------------------

    def __enter__(self) -> "FakeStripe":
        self._server = contextlib.ExitStack()
        self.url = self._server.enter_context(serve(self.app))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.close()
        self.url = None

    @contextlib.contextmanager
    def running(self) -> Iterator["FakeStripe"]:
        with self:
            yield self

    # -- seeding ------------------------------------------------------------------------------------

    def add_charge(self, amount: int = 34900, currency: str = "usd", *, customer: str | None = None,
                   captured: bool = True, amount_refunded: int = 0,
                   payment_intent: str | None = None) -> dict[str, Any]:
        with self._lock:
            charge = charge_object(amount, currency, customer=customer, captured=captured,
                                   payment_intent=payment_intent, livemode=self.livemode)
            charge["amount_refunded"] = amount_refunded
            charge["refunded"] = captured and amount_refunded >= amount
            self.charges[charge["id"]] = charge
            return charge

    def add_payment_intent(self, amount: int = 34900, currency: str = "usd", *,
                           customer: str | None = None, charged: bool = True) -> dict[str, Any]:
        """A payment intent and, when `charged`, its succeeded latest charge."""
        with self._lock:
            intent_id = new_id("pi_")
            latest = self.add_charge(amount, currency, customer=customer, payment_intent=intent_id)["id"] \
                if charged else None
            intent = {"id": intent_id, "object": "payment_intent", "amount": amount,
                      "amount_received": amount if charged else 0, "currency": currency,
                      "customer": customer, "latest_charge": latest, "livemode": self.livemode,
                      "metadata": {}, "created": int(time.time()),
                      "status": "succeeded" if charged else "requires_payment_method"}
            self.payment_intents[intent_id] = intent
            return intent

    def add_subscription(self, *, customer: str = "cus_QaAbCdEfGhIjK", currency: str = "usd",
                         items: tuple[dict[str, Any], ...] = ({"quantity": 1, "unit_amount": 2000},),
                         status: str = "active") -> dict[str, Any]:
        with self._lock:
            subscription = subscription_object(customer, list(items), currency, status, self.livemode)
            self.subscriptions[subscription["id"]] = subscription
            return subscription

    def add_dispute(self, *, charge: str | None = None, amount: int = 1000, currency: str = "usd",
                    reason: str = "general", status: str = "needs_response") -> dict[str, Any]:
        with self._lock:
            charge = charge or self.add_charge(amount, currency)["id"]
            dispute = dispute_object(charge, amount, currency, reason, status, self.livemode)
            self.disputes[dispute["id"]] = dispute
            return dispute

    def set_balance(self, currency: str, amount: int) -> None:
        with self._lock:
            self.available[currency] = amount

    # -- fault injection ----------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, *, code: str | None = None,
                  message: str | None = None) -> None:
        """The next n requests fail with `status` before reaching Stripe's logic (nothing saved)."""
        if status == 429:
            code = code or "rate_limit"
        elif status == 409:
            code = code or "lock_timeout"
        kind = "api_error" if status >= 500 else "invalid_request_error"
        text = message or {500: "An unknown error occurred", 429: "Too many requests hit the API too quickly.",
                           409: "This object cannot be accessed right now because another API request "
                                "or Stripe process is currently accessing it."}.get(status, "Request failed")
        with self._lock:
            for _ in range(n):
                self._faults.append(StripeErrorResponse(status, kind, text, code=code, saved=False))

    def card_error_next(self, code: str = "card_declined", *, decline_code: str | None = "generic_decline",
                        message: str = "Your card was declined.") -> None:
        """The next write is declined like a card error (402); saved under its idempotency key."""
        with self._lock:
            self._card_errors.append(StripeErrorResponse(402, "card_error", message, code=code,
                                                         decline_code=decline_code))

    def delay_next(self, seconds: float) -> None:
        """The next request is carried out, then answered only after `seconds`: a client that gives
        up first cannot know the refund happened, which is what idempotency keys are for."""
        with self._lock:
            self._delays.append(seconds)

    # -- assertions ---------------------------------------------------------------------------------

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def last(self, method: str, path: str) -> RecordedRequest:
        matching = self.requests_to(method, path)
        assert matching, f"no {method} {path} was received; got {[(r.method, r.path) for r in self.requests]}"
        return matching[-1]

    # -- the HTTP side ------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> JSONResponse:
        body = (await request.body()).decode()
        pairs = list(request.query_params.multi_items()) + parse_qsl(body, keep_blank_values=True)
        auth = request.headers.get("authorization", "")
        api_key = auth[7:] if auth.startswith("Bearer ") else None
        record = RecordedRequest(request.method, request.url.path, parse_brackets(pairs),
                                 request.headers.get("idempotency-key"), api_key)
        request_id = new_id("req_")
        headers = {"Request-Id": request_id}
        with self._lock:
            self.requests.append(record)
            fault = self._faults.popleft() if self._faults else None
            delay = self._delays.popleft() if self._delays else 0.0
            if fault is not None:
                status, payload = fault.status, fault.body
            else:
                status, payload, replayed_from = self._process(record, request_id)
                if replayed_from:
                    record.replayed = True
                    headers.update({"Idempotent-Replayed": "true", "Original-Request": replayed_from})
            record.status = status
        if record.idempotency_key:
            headers["Idempotency-Key"] = record.idempotency_key
        if delay:
            await asyncio.sleep(delay)
        return JSONResponse(payload, status_code=status, headers=headers)

    def _process(self, record: RecordedRequest, request_id: str) -> tuple[int, dict[str, Any], str | None]:
        key = record.idempotency_key if record.method == "POST" else None  # ignored on GET/DELETE
        try:
            self._authenticate(record.api_key)
            template, handler, path_args = self._route(record.method, record.path)
            self._check_parameters(record.method, template, record.params)
            endpoint = f"{record.method} {template}"
            if key is not None:
                saved = self._replay(record, key, endpoint)
                if saved is not None:
                    return saved.status, saved.body, saved.request_id
            if self._card_errors and record.method == "POST":
                raise self._card_errors.popleft()
            status, payload = 200, handler(record.params, *path_args)
        except StripeErrorResponse as error:
            if not error.saved or key is None:
                return error.status, error.body, None
            status, payload = error.status, error.body
        if key is not None:
            self._saved[(record.api_key, key)] = _Saved(endpoint, record.params, status, payload, request_id)
        return status, payload, None

    def _authenticate(self, api_key: str | None) -> None:
        if not api_key:
            raise invalid("You did not provide an API key. You need to provide your API key in the "
                          "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                          "YOUR_SECRET_KEY').", status=401, saved=False)
        known = api_key in self.api_keys if self.api_keys is not None else \
            api_key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_"))
        if not known:
            raise invalid(f"Invalid API Key provided: {api_key[:8]}****{api_key[-4:]}", status=401,
                          saved=False)

    def _route(self, method: str, path: str) -> tuple[str, Callable[..., dict[str, Any]], tuple[str, ...]]:
        for route_method, template, pattern, handler in self._routes:
            match = pattern.match(path)
            if match and route_method == method:
                return template, handler, match.groups()
        raise invalid(f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                      "or we can help at https://support.stripe.com/.", status=404, saved=False)

    def _check_parameters(self, method: str, template: str, params: dict[str, Any]) -> None:
        spec = load_spec(self.spec_path) if self.spec_path else None
        if spec is None:
            allowed = BUILT_IN_PARAMETERS.get((method, template), {"expand"})
            for name in params:
                if name not in allowed:
                    raise invalid(f"Received unknown parameter: {name}", code="parameter_unknown",
                                  param=name, saved=False)
            return
        operation = spec["paths"][template][method.lower()]
        if method == "GET":
            schema = {"type": "object", "properties": {
                p["name"]: p.get("schema", {}) for p in operation.get("parameters", []) if p["in"] == "query"}}
        else:
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/x-www-form-urlencoded", {}).get("schema", {})
            schema = {"type": "object", "properties": {}, **schema}
        problem = find_problem(params, schema, spec, "")
        if problem is not None:
            raise problem

    def _replay(self, record: RecordedRequest, key: str, endpoint: str) -> _Saved | None:
        if len(key) > 255:
            raise invalid("Idempotency-Key is too long: it may be at most 255 characters.", saved=False)
        saved = self._saved.get((record.api_key, key))
        if saved is None:
            return None
        if saved.endpoint != endpoint:
            raise StripeErrorResponse(
                400, "idempotency_error",
                f"Keys for idempotent requests can only be used for the same endpoint they were first "
                f"used for ('{saved.endpoint}' vs '{endpoint}'). Try using a key other than '{key}' if "
                "you meant to execute a different request.", saved=False)
        if saved.params != record.params:
            raise StripeErrorResponse(
                400, "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{key}' if you meant to execute a different "
                "request.", saved=False)
        return saved

    # -- endpoints (called with the lock held) --------------------------------------------------------

    def _find(self, table: dict[str, dict[str, Any]], object_id: str, kind: str, param: str) -> dict[str, Any]:
        if object_id not in table:
            raise invalid(f"No such {kind}: '{object_id}'", code="resource_missing", param=param, status=404)
        return table[object_id]

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        charge_id, intent_id = params.get("charge"), params.get("payment_intent")
        if (charge_id is None) == (intent_id is None):
            raise invalid("One of the following params should be provided for this request: charge or "
                          "payment_intent.", code="parameter_missing")
        if intent_id is not None:
            intent = self._find(self.payment_intents, intent_id, "payment_intent", "payment_intent")
            charge_id = intent["latest_charge"]
            if charge_id is None:
                raise invalid(f"PaymentIntent {intent_id} does not have a successful charge to refund.",
                              param="payment_intent")
        charge = self._find(self.charges, charge_id, "charge", "charge")
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise invalid(f"Charge {charge_id} has already been refunded.", code="charge_already_refunded")
        amount = int(params.get("amount", remaining))
        if amount <= 0:
            raise invalid("Invalid positive integer", code="parameter_invalid_integer", param="amount")
        if amount > remaining:
            raise invalid(f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                          f"({remaining})", code="amount_too_large", param="amount")
        refund = {
            "id": new_id("re_"), "object": "refund", "amount": amount, "balance_transaction": new_id("txn_"),
            "charge": charge_id, "created": int(time.time()), "currency": charge["currency"],
            "metadata": params.get("metadata") or {}, "payment_intent": charge["payment_intent"],
            "reason": params.get("reason"), "receipt_number": None, "status": "succeeded",
        }
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        charge["refunds"]["data"].insert(0, refund)
        self.refunds.append(refund)
        return refund

    def _list_refunds(self, params: dict[str, Any]) -> dict[str, Any]:
        matching = [r for r in reversed(self.refunds)
                    if params.get("charge") in (None, r["charge"])
                    and params.get("payment_intent") in (None, r["payment_intent"])]
        limit = int(params.get("limit", 10))
        if not 1 <= limit <= 100:
            raise invalid("Invalid limit: must be between 1 and 100", param="limit", saved=False)
        return _list(matching[:limit], "/v1/refunds", has_more=len(matching) > limit)

    def _retrieve_refund(self, params: dict[str, Any], refund_id: str) -> dict[str, Any]:
        return self._find({r["id"]: r for r in self.refunds}, refund_id, "refund", "id")

    def _create_payout(self, params: dict[str, Any]) -> dict[str, Any]:
        amount, currency = int(params["amount"]), params["currency"].lower()
        if amount > self.available.get(currency, 0):
            raise invalid("You have insufficient funds in your Stripe account for this transfer.",
                          code="balance_insufficient", param="amount")
        self.available[currency] -= amount
        payout = {
            "id": new_id("po_"), "object": "payout", "amount": amount, "arrival_date": int(time.time()) + 86400,
            "automatic": False, "balance_transaction": new_id("txn_"), "created": int(time.time()),
            "currency": currency, "description": params.get("description"),
            "destination": params.get("destination") or new_id("ba_"), "livemode": self.livemode,
            "metadata": params.get("metadata") or {}, "method": params.get("method", "standard"),
            "source_type": params.get("source_type", "card"),
            "statement_descriptor": params.get("statement_descriptor"), "status": "pending",
            "type": "bank_account",
        }
        self.payouts.append(payout)
        return payout

    def _retrieve_balance(self, params: dict[str, Any]) -> dict[str, Any]:
        available = [{"amount": amount, "currency": currency, "source_types": {"card": amount}}
                     for currency, amount in self.available.items()]
        pending = [{"amount": 0, "currency": currency, "source_types": {"card": 0}} for currency in self.available]
        return {"object": "balance", "available": available, "pending": pending, "livemode": self.livemode}

    def _retrieve_charge(self, params: dict[str, Any], charge_id: str) -> dict[str, Any]:
        return self._find(self.charges, charge_id, "charge", "id")

    def _retrieve_payment_intent(self, params: dict[str, Any], intent_id: str) -> dict[str, Any]:
        return self._find(self.payment_intents, intent_id, "payment_intent", "intent")

    def _retrieve_subscription(self, params: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        return self._find(self.subscriptions, subscription_id, "subscription", "id")

    def _update_subscription(self, params: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        subscription = self._find(self.subscriptions, subscription_id, "subscription", "id")
        if subscription["status"] == "canceled":
            raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
        items = subscription["items"]["data"]
        for index, change in enumerate(params.get("items", [])):
            self._apply_item_change(subscription, items, index, change)
        if "cancel_at_period_end" in params:
            at_end = params["cancel_at_period_end"] == "true"
            subscription["cancel_at_period_end"] = at_end
            subscription["cancel_at"] = subscription["current_period_end"] if at_end else None
        if "pause_collection" in params:
            pause = params["pause_collection"]
            subscription["pause_collection"] = None if pause == "" else {
                "behavior": pause["behavior"],
                "resumes_at": int(pause["resumes_at"]) if "resumes_at" in pause else None}
        subscription["metadata"].update(params.get("metadata") or {})
        return subscription

    def _apply_item_change(self, subscription: dict[str, Any], items: list[dict[str, Any]], index: int,
                           change: dict[str, Any]) -> None:
        if "id" not in change:
            if "price" not in change:
                raise invalid(f"Missing required param: items[{index}][price].",
                              code="parameter_missing", param=f"items[{index}][price]")
            items.append({"id": new_id("si_"), "object": "subscription_item", "metadata": {},
                          "price": _price(change["price"], subscription["currency"], 2000),
                          "quantity": int(change.get("quantity", 1)), "subscription": subscription["id"]})
            return
        item = next((i for i in items if i["id"] == change["id"]), None)
        if item is None:
            raise invalid(f"No such subscription item: '{change['id']}'", code="resource_missing",
                          param=f"items[{index}][id]")
        if change.get("deleted") == "true":
            items.remove(item)
            return
        if "quantity" in change:
            item["quantity"] = int(change["quantity"])
        if "price" in change:
            item["price"] = _price(change["price"], subscription["currency"], item["price"]["unit_amount"])

    def _cancel_subscription(self, params: dict[str, Any], subscription_id: str) -> dict[str, Any]:
        subscription = self._find(self.subscriptions, subscription_id, "subscription", "id")
        if subscription["status"] == "canceled":
            raise invalid(f"Subscription {subscription_id} is already canceled.")
        now = int(time.time())
        subscription.update(status="canceled", canceled_at=now, ended_at=now)
        subscription["cancellation_details"]["reason"] = "cancellation_requested"
        return subscription

    def _retrieve_dispute(self, params: dict[str, Any], dispute_id: str) -> dict[str, Any]:
        return self._find(self.disputes, dispute_id, "dispute", "dispute")

    def _open_dispute(self, dispute_id: str) -> dict[str, Any]:
        dispute = self._find(self.disputes, dispute_id, "dispute", "dispute")
        if dispute["status"] in ("won", "lost"):
            raise invalid(f"This dispute is already closed ({dispute['status']}).")
        return dispute

    def _update_dispute(self, params: dict[str, Any], dispute_id: str) -> dict[str, Any]:
        dispute = self._open_dispute(dispute_id)
        dispute["evidence"].update(params.get("evidence") or {})
        dispute["metadata"].update(params.get("metadata") or {})
        details = dispute["evidence_details"]
        details["has_evidence"] = bool(dispute["evidence"])
        if params.get("submit", "true") == "true":  # Stripe submits unless told not to
            dispute["status"] = "under_review"
            details["submission_count"] += 1
        return dispute

    def _close_dispute(self, params: dict[str, Any], dispute_id: str) -> dict[str, Any]:
        dispute = self._open_dispute(dispute_id)
        dispute["status"] = "lost"
        return dispute
