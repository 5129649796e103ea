"""The OpenAPI document, told truthfully: who authenticates how, and every error each route can answer.

FastAPI documents what a route returns on success; the errors come from the edge (body limits,
strict JSON), from authentication and from the domain, so this module adds them after generation:
problem+json on the native API, `{"error": …}` on the compatible one, and 429 with `Retry-After`
wherever a per-Connection limit applies.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

PROBLEM = "application/problem+json"

NATIVE_ERRORS: dict[str, dict[int, str]] = {
    "post /v1/approvals": {400: "malformed JSON, or nested too deeply", 401: "no valid Connection Key",
                           409: "Idempotency-Key reused with another body", 413: "body over 256 KB",
                           422: "invalid request", 429: "a per-Connection limit", 502: "Stripe unreachable",
                           503: "a part the request needs is not configured"},
    "get /v1/approvals": {401: "no valid Connection Key", 422: "invalid query"},
    "get /v1/approvals/{approval_id}": {401: "no valid Connection Key", 404: "no such approval for this Connection",
                                        422: "invalid query", 429: "too many requests held open"},
    "post /v1/approvals/{approval_id}/cancel": {400: "a body that is malformed or nested too deeply",
                                                401: "no valid Connection Key", 404: "no such approval",
                                                409: "not pending", 413: "body over 256 KB",
                                                422: "a non-finite number in the body"},
}
COMPAT_ERRORS: dict[str, dict[int, str]] = {
    "post /api/webhooks/inbound": {400: "invalid request", 401: "no valid key", 409: "Idempotency-Key reused",
                                   413: "body over 256 KB", 422: "a non-finite number in the body",
                                   429: "a per-Connection limit", 502: "Stripe unreachable",
                                   503: "not configured"},
    "post /api/approvals/request": {400: "invalid request", 401: "no valid key", 409: "Idempotency-Key reused",
                                    413: "body over 256 KB", 422: "a non-finite number in the body",
                                    429: "a per-Connection limit", 502: "Stripe unreachable",
                                    503: "not configured"},
    "get /api/approvals/{approval_id}": {401: "no valid key", 404: "no such request for this key"},
}
RETRY_AFTER = {"Retry-After": {"description": "seconds until asking again may succeed",
                               "schema": {"type": "integer", "minimum": 1}}}


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(None, description="field-level validation errors")


class CompatError(BaseModel):
    error: str


def _schema_ref(document: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    defs_ref = "#/components/schemas/{model}"
    schema = model.model_json_schema(ref_template=defs_ref)
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _error_responses(errors: dict[int, str], media_type: str, ref: dict[str, str]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, description in errors.items():
        response: dict[str, Any] = {"description": description, "content": {media_type: {"schema": ref}}}
        if status == 429:
            response["headers"] = RETRY_AFTER
        responses[str(status)] = response
    return responses


def describe(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    problem, compat_error = _schema_ref(document, Problem), _schema_ref(document, CompatError)
    document["components"]["securitySchemes"] = {
        "connectionKey": {"type": "http", "scheme": "bearer", "description": "the Connection Key, `cq_…`"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
                   "description": "the Connection Key, as Cheqpoint's SDKs send it"},
    }
    for schema in ("HTTPValidationError", "ValidationError"):  # replaced by Problem everywhere
        document["components"]["schemas"].pop(schema, None)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            key = f"{method} {path}"
            responses = operation["responses"]
            responses.pop("422", None)  # FastAPI's default shape is not what this service answers
            if key in NATIVE_ERRORS:
                operation["security"] = [{"connectionKey": []}]
                responses.update(_error_responses(NATIVE_ERRORS[key], PROBLEM, problem))
            elif key in COMPAT_ERRORS:
                operation["security"] = [{"apiKey": []}]
                operation["parameters"] = [p for p in operation.get("parameters", []) if p["name"] != "x-api-key"]
                responses.update(_error_responses(COMPAT_ERRORS[key], "application/json", compat_error))
    if "/readyz" in document["paths"]:
        document["paths"]["/readyz"]["get"]["responses"]["503"] = {"description": "the database is unreachable"}
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve `describe(app)` at /openapi.json, built once on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  (FastAPI's documented way to customise)
