"""`POST /v1/approvals` is served by a short-stack middleware (api/approvals/fast_intake.py): its
answers are the route's byte for byte, errors included, and what it does not take still reaches the
route. Each request goes to two apps on one service: the app as built, and the same app without the
short stack; a middleware innermost in both records which requests reached the framework."""

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.approvals.fast_intake import FastIntake, intake_key
from api.config import Settings
from api.connections import service
from api.http import PARSED_JSON
from api.main import Container, build_container, create_app, running
from tests.conftest import REFUND, Clock

EXAMPLE = Path(__file__).parent / "policies" / "contract_example.yaml"


class Reached:
    """Innermost middleware: notes each request that got as far as the framework's routing."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@dataclass
class Stacks:
    short: httpx.AsyncClient
    framework: httpx.AsyncClient
    key: str
    container: Container
    reached: list[str] = field(default_factory=list)

    def auth(self, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "X-Request-Id": "parity", **headers}

    async def both(self, path: str = "/v1/approvals", **request: Any) -> tuple[httpx.Response, httpx.Response, bool]:
        """The short stack's answer, the framework's, and whether the short stack served its request."""
        request.setdefault("headers", self.auth())
        self.reached.clear()
        short = await self.short.post(path, **request)
        served = not self.reached
        framework = await self.framework.post(path, **request)
        return short, framework, served


@contextlib.asynccontextmanager
async def stacks(settings: Settings, clock: Clock) -> AsyncIterator[Stacks]:
    container = build_container(settings, clock=clock)
    async with running(container, worker=False):
        created = await container.db.write(lambda session: service.create(session, "support-agent"))
        seen: list[str] = []
        short, framework = (create_app(settings, container=container) for _ in range(2))
        framework.user_middleware = [m for m in framework.user_middleware if m.cls is not FastIntake]
        for app in (short, framework):
            app.user_middleware.append(Middleware(Reached, seen=seen))  # the last is innermost
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=short), base_url="http://cheqpoint.test") \
                as short_http, httpx.AsyncClient(transport=httpx.ASGITransport(app=framework),
                                                 base_url="http://cheqpoint.test") as framework_http:
            yield Stacks(short_http, framework_http, created.key, container, seen)


def assert_same(short: httpx.Response, framework: httpx.Response) -> None:
    """Status, headers and body byte for byte; two new approvals differ only in their ids."""
    body = framework.content
    if short.status_code in (200, 202) and framework.status_code in (200, 202):
        ids = [answer.json().get("approvalId") or answer.json()["id"] for answer in (framework, short)]
        body = body.replace(ids[0].encode(), ids[1].encode())
    assert short.status_code == framework.status_code
    assert short.headers.raw == framework.headers.raw
    assert short.content == body


async def test_intake_answers_as_the_route_does(make_settings: Callable[..., Settings], clock: Clock) -> None:
    async with stacks(make_settings(policy_file=str(EXAMPLE)), clock) as s:
        pending = await s.both(json=REFUND)
        assert pending[0].status_code == 202 and pending[0].json()["status"] == "pending"
        small = {**REFUND, "details": {**REFUND["details"], "amount_cents": 3000}}
        decided = await s.both(json=small)  # a rule approves it at intake
        assert decided[0].status_code == 200 and decided[0].json()["status"] == "approved"
        held = await s.both(json={**REFUND, "timeoutMs": 30})  # held, still pending when the hold ends
        assert held[0].status_code == 200 and held[0].json()["status"] == "pending"
        charset = await s.both(json=REFUND, headers=s.auth(**{"Content-Type": "application/json; charset=UTF-8"}))
        for short, framework, served in (pending, decided, held, charset):
            assert served
            assert_same(short, framework)
        assert s.reached == ["POST /v1/approvals"]  # the app without the short stack: the route


async def test_idempotency_keys_replay_across_both(make_settings: Callable[..., Settings], clock: Clock) -> None:
    async with stacks(make_settings(), clock) as s:
        first = await s.short.post("/v1/approvals", json=REFUND, headers=s.auth(**{"Idempotency-Key": "k-1"}))
        short, framework, served = await s.both(json=REFUND, headers=s.auth(**{"Idempotency-Key": "k-1"}))
        assert served and first.status_code == 202
        assert short.content == framework.content  # one approval, one answer
        assert short.json() == first.json()  # (PostgreSQL's JSONB orders a stored object's keys its own way)
        assert short.headers.raw == framework.headers.raw
        other = {**REFUND, "summary": "Another refund"}
        conflict = await s.both(json=other, headers=s.auth(**{"Idempotency-Key": "k-1"}))
        assert conflict[2] and conflict[0].status_code == 409
        assert_same(*conflict[:2])
        # Keys the short stack does not take (too long, empty, twice) go to the route, which decides. The
        # empty key is a key to the route: stored once first, so both sides answer its replay.
        await s.short.post("/v1/approvals", json=REFUND, headers=s.auth(**{"Idempotency-Key": ""}))
        for headers in ([("Idempotency-Key", "k" * 256)], [("Idempotency-Key", "")],
                        [("Idempotency-Key", "k-1"), ("Idempotency-Key", "k-2")]):
            short, framework, served = await s.both(json=REFUND, headers=[*s.auth().items(), *headers])
            assert not served, headers
            assert_same(short, framework)
        assert (await s.both(json=REFUND, headers=s.auth(**{"Idempotency-Key": "k" * 256})))[0].status_code == 422
        assert (await s.both(json=REFUND, headers=s.auth(**{"Idempotency-Key": "k" * 255})))[2]


async def test_invalid_bodies_fall_through_to_the_route(make_settings: Callable[..., Settings],
                                                        clock: Clock) -> None:
    async with stacks(make_settings(), clock) as s:
        for body in ({**REFUND, "action": "Not An Action"}, {**REFUND, "surprise": 1}, {"action": "x"},
                     [REFUND], "text", {**REFUND, "timeoutMs": -1}, {**REFUND, "timeoutMs": 1.5}):
            short, framework, served = await s.both(json=body)
            assert short.status_code == 422 and not served, body
            assert_same(short, framework)
        # The service's own refusal (an action outside the catalogue cannot execute) comes from the short stack.
        unknown = await s.both(json={**REFUND, "action": "custom_thing", "execute": True})
        assert unknown[0].status_code == 422 and unknown[2]
        assert_same(*unknown[:2])


async def test_missing_or_wrong_bearers(make_settings: Callable[..., Settings], clock: Clock) -> None:
    async with stacks(make_settings(), clock) as s:
        for auth in ({}, {"Authorization": "Bearer cq_wrong"}, {"Authorization": "Basic abc"},
                     {"Authorization": "Bearer "}):
            for body in (REFUND, {"not": "valid"}):  # 401 whatever the body: the bearer is checked first
                short, framework, served = await s.both(json=body, headers={"X-Request-Id": "parity", **auth})
                assert short.status_code == 401 and served, auth
                assert_same(short, framework)


async def test_over_the_limit(make_settings: Callable[..., Settings], clock: Clock) -> None:
    async with stacks(make_settings(limit_requests_per_minute=2), clock) as s:
        answers = [await s.short.post("/v1/approvals", json=REFUND, headers=s.auth()) for _ in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert not s.reached
        # A second Connection for the framework's side, so each side meets the limit alike.
        s.key = (await s.container.db.write(lambda session: service.create(session, "second-agent"))).key
        refused = [await s.framework.post("/v1/approvals", json=REFUND, headers=s.auth()) for _ in range(3)]
        assert [a.status_code for a in refused] == [202, 202, 429]
        assert_same(answers[2], refused[2])


async def test_other_content_and_queries_go_to_the_route(make_settings: Callable[..., Settings],
                                                         clock: Clock) -> None:
    import json

    raw = json.dumps(REFUND).encode()
    async with stacks(make_settings(), clock) as s:
        cases = [({"Content-Type": "text/plain"}, raw, 422), ({}, raw, 422), ({"Content-Type": "application/json"},
                 b"{not json", 400), ({"Content-Type": "application/json"}, b"", 422),
                 ({"Content-Type": "application/merge-patch+json"}, raw, 202)]
        for headers, content, status in cases:
            short, framework, served = await s.both(content=content, headers=s.auth(**headers))
            assert short.status_code == status and not served, (headers, content)
            assert_same(short, framework)
        s.reached.clear()
        queried = await s.short.post("/v1/approvals?x=1", json=REFUND, headers=s.auth())
        assert queried.status_code == 202 and s.reached == ["POST /v1/approvals"]


def test_only_plain_intake_takes_the_short_path() -> None:
    def scope(path: str = "/v1/approvals", method: str = "POST", query: bytes = b"",
              headers: list[tuple[bytes, bytes]] | None = None, parsed: bool = True) -> dict[str, object]:
        headers = [(b"content-type", b"application/json")] if headers is None else headers
        built: dict[str, object] = {"type": "http", "method": method, "path": path, "query_string": query,
                                    "headers": headers}
        if parsed:
            built[PARSED_JSON] = {}
        return built

    assert intake_key(scope()) == ""
    assert intake_key(scope(headers=[(b"content-type", b"Application/JSON"), (b"idempotency-key", b"k")])) == "k"
    assert intake_key(scope(parsed=False)) is None  # empty, not JSON, or refused: not for the short stack
    assert intake_key(scope(method="PUT")) is None
    assert intake_key(scope(path="/v1/approvals/")) is None
    assert intake_key(scope(path="/api/approvals")) is None
    assert intake_key(scope(query=b"a=1")) is None
    assert intake_key(scope(headers=[])) is None
    assert intake_key(scope(headers=[(b"content-type", b"application/json")] * 2)) is None
    assert intake_key(scope(headers=[(b"content-type", b"application/json"), (b"idempotency-key", b"")])) is None


async def test_request_ids_are_kept(make_settings: Callable[..., Settings], clock: Clock) -> None:
    async with stacks(make_settings(), clock) as s:
        auth = [("Authorization", f"Bearer {s.key}")]
        given = await s.short.post("/v1/approvals", json=REFUND, headers=[*auth, ("X-Request-Id", "agent-7")])
        assert given.headers["x-request-id"] == "agent-7"
        twice = await s.short.post("/v1/approvals", json=REFUND,
                                   headers=[*auth, ("X-Request-Id", "first"), ("X-Request-Id", "second")])
        assert twice.headers["x-request-id"] == "second"  # the last one, as it always was
        unsafe = await s.short.post("/v1/approvals", json=REFUND, headers=[*auth, ("X-Request-Id", "a b")])
        assert unsafe.headers["x-request-id"].startswith("req_") and len(unsafe.headers["x-request-id"]) == 20


async def test_the_compatible_intake_answers_as_its_route_does(make_settings: Callable[..., Settings],
                                                               clock: Clock) -> None:
    path = "/api/approvals/request"
    small = {**REFUND, "details": {**REFUND["details"], "amount_cents": 3000}}
    async with stacks(make_settings(policy_file=str(EXAMPLE)), clock) as s:
        keyed = {"x-api-key": s.key, "X-Request-Id": "parity"}
        served_cases: list[tuple[Any, dict[str, str], int]] = [
            (REFUND, keyed, 200), (small, keyed, 200), ({**REFUND, "unknownField": 1}, keyed, 200),
            ({**REFUND, "apiKey": s.key}, {"X-Request-Id": "parity"}, 200),
            (REFUND, {"X-Request-Id": "parity"}, 401), (REFUND, {**keyed, "x-api-key": "cq_wrong"}, 401),
            ({**REFUND, "apiKey": "cq_other"}, keyed, 401),
            ({**REFUND, "action": "custom_thing", "execute": True}, keyed, 400)]
        for body, headers, status in served_cases:
            short, framework, served = await s.both(path, json=body, headers=headers)
            assert short.status_code == status and served, (body, headers)
            assert_same(short, framework)
        assert [a.json()["status"] for a in (await s.both(path, json=small, headers=keyed))[:2]] == ["APPROVED"] * 2
        once = await s.short.post(path, json=REFUND, headers={**keyed, "Idempotency-Key": "c-1"})
        replays = await s.both(path, json=REFUND, headers={**keyed, "Idempotency-Key": "c-1"})
        assert replays[2] and replays[0].content == replays[1].content and replays[0].json() == once.json()
        # Bodies that do not validate (400 from the route, and before the key is checked), other content.
        for body, headers in (({"summary": "no action"}, keyed), ({"summary": "no action"}, {}),
                              ({**REFUND, "maxWaitMs": -1}, keyed), ([REFUND], keyed)):
            short, framework, served = await s.both(path, json=body, headers={"X-Request-Id": "parity", **headers})
            assert short.status_code == 400 and not served, body
            assert_same(short, framework)
        text = await s.both(path, content=b"{}", headers={**keyed, "Content-Type": "text/plain"})
        assert not text[2]
        assert_same(*text[:2])
