"""Fuzzing both APIs against the served app with schemathesis: no 5xx, and every answer (status,
content type, headers, body) is one the OpenAPI document describes. Bounded and derandomised, so
the suite stays fast and a failure reproduces."""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.live import Live, start_live

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
EXAMPLES = 40


@pytest.fixture
def live(make_settings) -> Iterator[Live]:
    yield from start_live(make_settings(limit_requests_per_minute=10_000, limit_lookups_per_minute=10_000))


def fuzz(live: Live, prefix: str, mode: GenerationMode) -> list[str]:
    """Run every operation under `prefix`; return the ones run. Negative cases (data the document
    forbids) must be refused as documented too, never with a 5xx."""
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    headers = {"Authorization": f"Bearer {live.key}", "x-api-key": live.key}
    ran = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(prefix):
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            # Holds are bounded so a generated `waitMs`/`maxWaitMs` cannot stretch the run.
            if case.query and "waitMs" in case.query:
                case.query["waitMs"] = 0
            if isinstance(case.body, dict) and ("maxWaitMs" in case.body or "timeoutMs" in case.body):
                case.body.pop("maxWaitMs", None)
                case.body.pop("timeoutMs", None)
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)

        check()
        ran.append(f"{operation.method.upper()} {operation.path}")
    return ran


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_the_native_api_keeps_to_its_document(live: Live, mode: GenerationMode) -> None:
    assert len(fuzz(live, "/v1/", mode)) == 4


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_the_compatible_api_keeps_to_its_document(live: Live, mode: GenerationMode) -> None:
    assert len(fuzz(live, "/api/", mode)) == 3


def test_the_document_names_its_security_and_errors(live: Live) -> None:
    import httpx

    document = httpx.get(f"{live.url}/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["connectionKey"] == {**schemes["connectionKey"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"]["name"] == "x-api-key" and schemes["apiKey"]["in"] == "header"
    create = document["paths"]["/v1/approvals"]["post"]
    assert create["security"] == [{"connectionKey": []}]
    assert "application/problem+json" in create["responses"]["422"]["content"]
    assert "Retry-After" in create["responses"]["429"]["headers"]
    inbound = document["paths"]["/api/webhooks/inbound"]["post"]
    assert inbound["security"] == [{"apiKey": []}]
    error = inbound["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/CompatError")
    body = document["components"]["schemas"]["ApprovalCreate"]["properties"]
    assert body["summary"]["maxLength"] == 2000
