"""Rendering: Jinja2 templates (autoescaped: agent text is data), formatting, and the headers every
console response carries."""

import json
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.money import format_money

ResponseT = TypeVar("ResponseT", bound=Response)

HERE = Path(__file__).resolve().parent

# No script may run and nothing may load from elsewhere; forms post only to the console itself.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def money(amount: object, currency: object) -> str:
    if isinstance(amount, int) and not isinstance(amount, bool) and isinstance(currency, str) and currency:
        return format_money(amount, currency)
    if isinstance(amount, int) and not isinstance(amount, bool):
        return f"{amount} (minor units)"
    return "—"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def age(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "—"
    seconds = max(0, int((now - value).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


environment = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                          trim_blocks=True, lstrip_blocks=True)
environment.filters.update(money=money, when=when, json=as_json)
environment.globals.update(age=age)


def page(template: str, context: dict[str, Any], *, status: int = 200,
         headers: dict[str, str] | None = None) -> HTMLResponse:
    body = environment.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def secure(response: ResponseT) -> ResponseT:
    response.headers.update(SECURITY_HEADERS)
    return response
