"""What the short-stack middlewares (held_reads.py, fast_intake.py) share: reading a header from the
ASGI scope, and answering an error exactly as the app's exception handlers would (api/http.py for
AppError and the unexpected, api/admission.py for an overloaded database)."""

import logging

from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.types import Scope

from api.admission import overloaded
from api.errors import AppError
from api.http import PROBLEM, problem_response

# The loggers of the handlers these answers stand in for: a log line reads the same whichever stack served.
admission_log = logging.getLogger("api.admission")
http_log = logging.getLogger("api.http")


def header(scope: Scope, name: bytes) -> str:
    """The first value of header `name` (lower case), as Starlette's `request.headers.get` reads it."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def error_answer(exc: Exception) -> Response:
    """The app's answer to an exception raised while a short stack served a request."""
    if isinstance(exc, AppError):  # as install_error_handlers answers it
        return JSONResponse(exc.problem(), status_code=exc.status, media_type=PROBLEM, headers=exc.headers())
    refused = overloaded(exc)
    if refused is not None:  # as install_admission answers it
        admission_log.warning("refused a request: the database could not serve it in time (%s)", type(exc).__name__)
        return JSONResponse(refused.problem(), status_code=503, media_type=PROBLEM, headers=refused.headers())
    http_log.exception("unhandled error", exc_info=exc)
    return problem_response(500, "Internal error", "something went wrong on our side; nothing was lost")


__all__ = ["error_answer", "header"]
