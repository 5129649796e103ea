"""The asynchronous client: the same calls as `Client`, awaited.

    async with AsyncClient() as cheqpoint:
        approval = await cheqpoint.request_sync("issue_refund", "Refund …", {...}, timeout_ms=300_000)
"""

import asyncio
from datetime import datetime
from typing import Any

import httpx

from cheqpoint_client import _core
from cheqpoint_client.models import Approval, ApprovalPage


class AsyncClient:
    """One per event loop is enough. Close it with `aclose()`, or use it as an async context manager."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, *, timeout: float = 30.0,
                 hold_ms: int = _core.SERVER_HOLD_MS,
                 max_retries: int = _core.DEFAULT_MAX_RETRIES, max_retry_after: float = _core.DEFAULT_MAX_RETRY_AFTER,
                 http: httpx.AsyncClient | None = None) -> None:
        """`hold_ms`: the longest single hold asked of the service (its own cap is 60 s); `max_retries`: how
        often a transport error or a 5xx is retried where that is safe (reads, and creates, which always
        carry an Idempotency-Key), or a 429 is sent again; `max_retry_after`: the longest `Retry-After`
        (seconds) waited out before asking again, longer ones are raised with their `retry_after`; `http`:
        bring your own `httpx.AsyncClient` (proxies, event hooks, a mock transport)."""
        self.api_key, self.base_url = _core.resolve(api_key, base_url)
        self.timeout = timeout
        self.hold_ms = hold_ms
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)

    # ---- requests ---------------------------------------------------------------------------------

    async def request_sync(self, action: str, summary: str, details: dict[str, Any], *, timeout_ms: int = 60_000,
                     justification: str | None = None, execute: bool | None = None, risk_level: str | None = None,
                     priority: str | None = None, agent_name: str | None = None,
                     metadata: dict[str, str] | None = None, expires_at: datetime | None = None,
                     callback_url: str | None = None, idempotency_key: str | None = None) -> Approval:
        """Ask and wait up to `timeout_ms` for the outcome, holding across as many calls as that takes.

        Returns the approval whatever its state: still `pending` when the time ran out (ask again with
        `wait()` or `get()`), otherwise final — and, when the service executes it, executed.
        """
        deadline = _core.Deadline(timeout_ms, self.hold_ms)
        hold = deadline.next_hold_ms()
        body = _core.create_body(action, summary, details, justification=justification,
                                 callback_url=callback_url, timeout_ms=hold, execute=execute,
                                 risk_level=risk_level, priority=priority, agent_name=agent_name,
                                 metadata=metadata, expires_at=expires_at)
        first = await self._send("POST", "/v1/approvals", json=body, headers=_core.idempotency(idempotency_key),
                           timeout=deadline.read_timeout(hold, self.timeout))
        return await self._hold(_core.approval(first), deadline)

    async def request_async(self, action: str, summary: str, details: dict[str, Any], *,
                      callback_url: str | None = None, idempotency_key: str | None = None,
                      justification: str | None = None, execute: bool | None = None, risk_level: str | None = None,
                      priority: str | None = None, agent_name: str | None = None,
                      metadata: dict[str, str] | None = None, expires_at: datetime | None = None) -> Approval:
        """Ask and return at once: pending, or already decided when a policy rule decided it.

        The outcome arrives at `callback_url` (check it with `verify_webhook`) or through `get()`.
        The same `idempotency_key` returns the original request instead of making a second one.
        """
        body = _core.create_body(action, summary, details, justification=justification,
                                 callback_url=callback_url, execute=execute, risk_level=risk_level,
                                 priority=priority, agent_name=agent_name, metadata=metadata,
                                 expires_at=expires_at)
        return _core.approval(await self._send("POST", "/v1/approvals", json=body,
                                         headers=_core.idempotency(idempotency_key)))

    # ---- reads and cancellation ----------------------------------------------------------------------

    async def get(self, approval_id: str, *, wait_ms: int = 0) -> Approval:
        """The approval now, or once settled within `wait_ms` (one hold, capped by the service)."""
        params = {"waitMs": wait_ms} if wait_ms > 0 else None
        return _core.approval(await self._send("GET", f"/v1/approvals/{approval_id}", params=params,
                                         timeout=httpx.Timeout(self.timeout + wait_ms / 1000)))

    async def wait(self, approval_id: str, timeout_ms: int) -> Approval:
        """Hold until the approval settles or `timeout_ms` passes, across several holds if need be."""
        deadline = _core.Deadline(timeout_ms, self.hold_ms)
        return await self._hold(await self.get(approval_id, wait_ms=deadline.next_hold_ms()), deadline)

    async def list(self, *, status: str | None = None, limit: int | None = None,
             cursor: str | None = None) -> ApprovalPage:
        """This Connection's approvals, newest first."""
        return _core.page(await self._send("GET", "/v1/approvals", params=_core.list_params(status, limit, cursor)))

    async def cancel(self, approval_id: str) -> Approval:
        """Withdraw a pending request (`ConflictError` once it is decided)."""
        return _core.approval(await self._send("POST", f"/v1/approvals/{approval_id}/cancel"))

    # ---- plumbing ----------------------------------------------------------------------------------------

    async def _hold(self, approval: Approval, deadline: _core.Deadline) -> Approval:
        while not approval.is_settled:
            hold = deadline.next_hold_ms()
            if hold <= 0:
                break
            approval = await self.get(approval.approval_id, wait_ms=hold)
        return approval

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        extra = _core.with_idempotency(method, path, kwargs.pop("headers", {}))
        headers = {**_core.headers(self.api_key), **extra}
        attempt = 0
        while True:
            response = None
            try:
                response = await self._http.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                if attempt >= self.max_retries or not _core.retry_error(method, headers, exc):
                    raise _core.transport_error(exc) from exc
            else:
                if attempt >= self.max_retries or not _core.retry_response(method, headers, response,
                                                                                 self.max_retry_after):
                    return response
            await asyncio.sleep(_core.retry_delay(attempt, response, self.max_retry_after))
            attempt += 1

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
