"""Strict JSON: what every request body must be before any route or validator sees it.

Python's `json` reads `NaN`, `Infinity` and `-Infinity`, which JSON does not have; stored, they make
every later rendering of the row fail. It also reads `\u0000` and lone surrogates (`\ud800`), which
PostgreSQL cannot store and UTF-8 cannot encode. Deep nesting makes parsers and validators recurse
until they fail. All are refused here, at the edge, naming where in the body the problem is.
"""

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from api.config import MAX_JSON_DEPTH

JsonPath = list[str | int]
# NUL, and UTF-16 surrogates (only ever halves of a pair in JSON text, never characters of their own).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class BodyProblem:
    status: int
    title: str
    detail: str
    loc: JsonPath | None = None
    kind: str = ""
    message: str = ""


class _NonFinite(float):
    """Marks where a `NaN`/`Infinity` literal stood, so the check can name the place."""


def _mark(literal: str) -> float:
    return _NonFinite(math.nan if literal == "NaN" else math.inf)


NOT_PARSED = object()  # the body was empty or not JSON: the route's own parser answers it


def check_json_body(raw: bytes) -> BodyProblem | None:
    """None when `raw` is acceptable (or not JSON at all, which the route's own parser refuses)."""
    return parse_json_body(raw)[1]


def parse_json_body(raw: bytes) -> tuple[Any, BodyProblem | None]:
    """The document and None when `raw` is acceptable; NOT_PARSED when it is empty or not JSON."""
    if not raw.strip():
        return NOT_PARSED, None
    try:
        document = json.loads(raw, parse_constant=_mark)
    except RecursionError:
        return NOT_PARSED, _too_deep()
    except ValueError:  # not JSON, or not UTF-8: the route answers that as malformed
        return NOT_PARSED, None
    problem = _walk(document)
    return (NOT_PARSED, problem) if problem is not None else (document, None)


def _too_deep() -> BodyProblem:
    return BodyProblem(400, "Nested too deeply", f"JSON bodies may nest at most {MAX_JSON_DEPTH} levels deep")


def _walk(document: Any) -> BodyProblem | None:
    # Iterative, so the check itself cannot be made to recurse.
    stack: list[tuple[Any, JsonPath]] = [(document, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            return _too_deep()
        if isinstance(value, float) and not math.isfinite(value):
            return _invalid(path, "NaN and Infinity are not JSON numbers; send a finite number or null",
                            "finite_number")
        if isinstance(value, str) and UNSTORABLE.search(value):
            return _invalid(path, "text may not hold NUL (\\u0000) or unpaired surrogates", "storable_text")
        if isinstance(value, dict):
            for key in value:
                if UNSTORABLE.search(key):
                    return _invalid(path, "a key holds NUL (\\u0000) or unpaired surrogates", "storable_text")
            stack.extend((item, [*path, key]) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, [*path, index]) for index, item in enumerate(value))
    return None


def _invalid(path: JsonPath, message: str, kind: str) -> BodyProblem:
    where = ".".join(str(p) for p in path) or "the body"
    return BodyProblem(422, "Validation failed", f"{where}: {message}", loc=path, kind=kind, message=message)


def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None: rows stored before the check stay readable."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(has_non_finite(item) for item in value)
    return False


# Built once: `json.dumps` with options builds an encoder at every call (every response renders here).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def dumps(value: Any) -> str:
    """Compact JSON that never contains a bare NaN: strict JSON is all that leaves this service."""
    try:
        return _COMPACT(value)
    except ValueError:
        return _COMPACT(finite(value))
