"""Admission control: a request the database cannot serve in time is answered 503, never 500.

When the process is saturated, requests queue for one of the database pool's connections. Past the
pool's timeout (`CHEQPOINT_DB_POOL_TIMEOUT_SECONDS`) SQLAlchemy gives up with `TimeoutError`; on
SQLite a writer may likewise give up waiting for another process's lock ("database is locked").
Neither is a fault of the request or of ours: it is load, and the caller should come back later. So
the answer is `503` with `Retry-After` and a problem body — what the SDKs retry after a pause —
instead of a 500 that reads as a bug and invites an immediate retry.

Nothing is left half-done: a pool timeout happens before the statement it was wanted for runs, and
a failed transaction rolls back (a group commit reruns the batch's other callers alone), so the
same request sent again, with its Idempotency-Key, is served as if it were the first.
"""

import logging
import random

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.errors import AppError
from api.http import PROBLEM, problem_response

log = logging.getLogger(__name__)

# Long enough for a burst to drain, short enough that a held request is not given up on. Drawn at
# random for each refusal: with a fixed value every client refused in the same moment came back in
# the same moment too (26,110 refusals in one holds run, all retried after exactly 2 s), so the crowd
# that overloaded the pool returned whole. Whole seconds, as HTTP's delay-seconds requires.
RETRY_AFTER_SECONDS = (1, 3)  # lowest and highest, inclusive


class Overloaded(AppError):
    status = 503
    title = "Overloaded"
    type = "https://cheqpoint.dev/problems/overloaded"

    def __init__(self, detail: str = "the service is busy and could not take this request in time; "
                                     "nothing was done, send it again after Retry-After seconds") -> None:
        super().__init__(detail)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(random.randint(*RETRY_AFTER_SECONDS))}  # a spread, not a secret


def overloaded(exc: BaseException) -> Overloaded | None:
    """The 503 for a database that could not serve in time; None for any other error."""
    if isinstance(exc, PoolTimeout):
        return Overloaded()
    if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
        return Overloaded()
    return None


def install_admission(app: FastAPI) -> None:
    async def answer(_request: Request, exc: Exception) -> JSONResponse:
        refused = overloaded(exc)
        if refused is None:  # another OperationalError: the generic 500, as api/http.py answers it
            log.exception("unhandled error", exc_info=exc)
            return problem_response(500, "Internal error", "something went wrong on our side; nothing was lost")
        log.warning("refused a request: the database could not serve it in time (%s)", type(exc).__name__)
        return JSONResponse(refused.problem(), status_code=refused.status, headers=refused.headers(),
                            media_type=PROBLEM)

    app.add_exception_handler(PoolTimeout, answer)
    app.add_exception_handler(OperationalError, answer)


__all__ = ["RETRY_AFTER_SECONDS", "Overloaded", "install_admission", "overloaded"]
