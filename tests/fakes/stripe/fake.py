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
- What verification reads: customers, a customer's charges (their refunds filled in), disputes of a
  charge, prices, the account's payout destinations, the balance (available and pending) and the
  upcoming-invoice preview of a subscription with proposed items. Every object it serves fits the
  spec's schema (`spec_objects.object_problems`, tests/test_stripe_facts_fake.py).

Every request is recorded in `fake.requests` (parsed parameters, key, status, replayed).
"""


import asyncio
import contextlib
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import serve
from tests.fakes.stripe.endpoints import Endpoints
from tests.fakes.stripe.objects import account_object
from tests.fakes.stripe.seeding import Seeding
from tests.fakes.stripe.wire import (
    BUILT_IN_PARAMETERS,
    SPEC_PATH,
    RecordedRequest,
    StripeErrorResponse,
    _Saved,
    find_problem,
    invalid,
    load_spec,
    new_id,
    parse_brackets,
)

T = TypeVar("T")
WRITES = ("POST", "DELETE")


class FakeStripe(Seeding, Endpoints):
    def __init__(self, *, api_keys: set[str] | None = None, spec_path: Path | None = SPEC_PATH) -> None:
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "DELETE"])])
        self.url: str | None = None
        self.api_keys = api_keys
        self.spec_path = spec_path
        self.charges: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.account = account_object(new_id("acct_"), [])
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.refunds: list[dict[str, Any]] = []
        self.payouts: list[dict[str, Any]] = []
        self.available: dict[str, int] = {"usd": 10_000_000}
        self.pending: dict[str, int] = {}
        self.requests: list[RecordedRequest] = []
        self.livemode = False
        self._lock = threading.RLock()  # the server runs in its own thread
        # Injected faults and delays, each for the next request of the given methods.
        self._faults: deque[tuple[tuple[str, ...], StripeErrorResponse]] = deque()
        self._card_errors: deque[StripeErrorResponse] = deque()
        self._delays: deque[tuple[tuple[str, ...], float]] = deque()
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
                ("GET", "/v1/disputes", self._list_disputes),
                ("GET", "/v1/disputes/{dispute}", self._retrieve_dispute),
                ("GET", "/v1/customers/{customer}", self._retrieve_customer),
                ("GET", "/v1/charges", self._list_charges),
                ("GET", "/v1/prices/{price}", self._retrieve_price),
                ("GET", "/v1/account", self._retrieve_account),
                ("GET", "/v1/invoices/upcoming", self._upcoming_invoice),
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

    # -- fault injection ----------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, *, code: str | None = None,
                  message: str | None = None, methods: tuple[str, ...] = WRITES) -> None:
        """The next n requests of `methods` (by default the writes: the reads that verify a request
        are not what these faults are about) fail with `status` before reaching Stripe's logic
        (nothing saved). `methods=("GET",)` makes Stripe unreachable for verification."""
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
                self._faults.append((methods, StripeErrorResponse(status, kind, text, code=code, saved=False)))

    def card_error_next(self, code: str = "card_declined", *, decline_code: str | None = "generic_decline",
                        message: str = "Your card was declined.") -> None:
        """The next write is declined like a card error (402); saved under its idempotency key."""
        with self._lock:
            self._card_errors.append(StripeErrorResponse(402, "card_error", message, code=code,
                                                         decline_code=decline_code))

    def delay_next(self, seconds: float, *, methods: tuple[str, ...] = WRITES) -> None:
        """The next request of `methods` is carried out, then answered only after `seconds`: a client
        that gives up first cannot know the refund happened, which is what idempotency keys are for."""
        with self._lock:
            self._delays.append((methods, seconds))

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
            fault = _take(self._faults, request.method)
            delay = _take(self._delays, request.method) or 0.0
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


def _take(queue: deque[tuple[tuple[str, ...], T]], method: str) -> T | None:
    """The first queued item meant for a request of this method, removed from the queue."""
    for entry in queue:
        if method in entry[0]:
            queue.remove(entry)
            return entry[1]
    return None
