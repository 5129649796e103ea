"""Whether an object the fake serves is one Stripe could serve: checked against the response schema
of the vendored OpenAPI spec (`components.schemas.<object>`): required fields present, types,
enums, nullability, and no field the schema does not know."""

from typing import Any

from tests.fakes.stripe.wire import SPEC_PATH, load_spec

_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float),
                                       "boolean": (bool,), "object": (dict,), "array": (list,)}


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def problems(value: Any, schema: dict[str, Any], spec: dict[str, Any], path: str) -> list[str]:
    schema = _resolve(schema, spec)
    if value is None:
        return [] if schema.get("nullable") else [f"{path}: null where the spec does not allow it"]
    if "anyOf" in schema:
        found = [problems(value, branch, spec, path) for branch in schema["anyOf"]]
        return [] if any(not branch for branch in found) else min(found, key=len)
    kind = schema.get("type")
    if kind is not None:
        allowed = _TYPES.get(kind, (object,))
        if not isinstance(value, allowed) or (kind in ("integer", "number") and isinstance(value, bool)):
            return [f"{path}: {type(value).__name__} where the spec has {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} is not one of {schema['enum']}"]
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        found += [f"{path}.{name}: required by the spec, missing" for name in schema.get("required", [])
                  if name not in value]
        for key, item in value.items():
            if key in properties:
                found += problems(item, properties[key], spec, f"{path}.{key}")
            elif isinstance(extra, dict):
                found += problems(item, extra, spec, f"{path}.{key}")
            elif properties:
                found.append(f"{path}.{key}: not a field of this object in the spec")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += problems(item, schema.get("items", {}), spec, f"{path}[{index}]")
    return found


def object_problems(obj: dict[str, Any], schema_name: str | None = None) -> list[str]:
    """What is wrong with `obj` as a `schema_name` (default: its own `object` field)."""
    spec = load_spec(SPEC_PATH)
    assert spec is not None, f"{SPEC_PATH} is absent"
    name = schema_name or obj["object"]
    return problems(obj, spec["components"]["schemas"][name], spec, name)
