"""The MCP server: lets any agent runtime that speaks the Model Context Protocol ask for human approval.

Two tools, served on stdio (`cheqpoint mcp`), talking to the native API with our `AsyncClient`:

- `request_human_approval`: ask; optionally wait for the outcome.
- `get_approval_status`: ask again later about a request that was still pending.

Each answer starts with one word the model can act on — APPROVED, REJECTED, PENDING or TIMED_OUT —
and carries the same facts as structured content. Requests are decide-only by default: the agent acts
on the approved details itself, as it would with Cheqpoint's own tools.
"""

import json
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, ValidationError

from cheqpoint_client.aio import AsyncClient
from cheqpoint_client.errors import APIError, CheqpointClientError
from cheqpoint_client.models import Approval

# MCP clients give up on a tool call after a minute or a few; longer waits belong to get_approval_status.
MAX_WAIT_SECONDS = 300

INSTRUCTIONS = (
    "Use request_human_approval before any consequential action (refunds, payouts, cancellations, "
    "anything irreversible). Act only on APPROVED, and then only with the details it returns. On "
    "REJECTED do not proceed. On PENDING or TIMED_OUT do not proceed yet: call get_approval_status "
    "with the approval id later."
)


def _outcome(approval: Approval, *, waited: bool) -> dict[str, Any]:
    """The tool's answer: a status word, the facts, and one sentence telling the model what to do."""
    facts: dict[str, Any] = {"approvalId": approval.approval_id, "action": approval.action}
    if approval.status == "approved":
        facts.update(status="APPROVED", details=approval.effective_details, changes=approval.changes,
                     note=approval.decision_note, execution=approval.execution.status)
        edited = " A reviewer changed them: use these, not the ones you sent." if approval.changes else ""
        facts["message"] = f"Approved. Proceed with exactly these details.{edited}"
        if approval.execution.status != "not_requested":
            facts["message"] = f"Approved; Cheqpoint runs the Stripe call itself (now {approval.execution.status})."
            facts["stripeObjectId"] = approval.execution.stripe_object_id
    elif approval.status == "pending":
        word = "TIMED_OUT" if waited else "PENDING"
        facts.update(status=word, message=(
            f"No decision yet. Do not proceed. Ask again later with get_approval_status(approval_id="
            f"\"{approval.approval_id}\")."))
    else:
        reason = {"expired": "It expired before anyone decided", "cancelled": "It was cancelled"}.get(
            approval.status, "A reviewer rejected it")
        facts.update(status="REJECTED", note=approval.decision_note, reason=approval.status,
                     message=f"{reason}. Do not proceed." + (f" Note: {approval.decision_note}"
                                                             if approval.decision_note else ""))
    return facts


def _text(facts: dict[str, Any]) -> str:
    return f"{facts['status']}: {facts['message']}\n{json.dumps(facts, indent=2, default=str)}"


def _failure(exc: CheqpointClientError) -> ToolError:
    """Refusals and outages are tool errors, never a REJECTED the model might read as a decision."""
    if isinstance(exc, APIError):
        return ToolError(f"ERROR: the approval service refused the request ({exc}). Do not proceed.")
    return ToolError(f"ERROR: the approval service could not be reached ({exc}). Do not proceed.")


class _Server(MCPServer):
    """Answers arguments that do not fit in a sentence a model can fix its call from."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: "
                                 f"{'missing (required)' if e['type'] == 'missing' else e['msg']}"
                                 for e in exc.__cause__.errors())
            raise ToolError(f"ERROR: {name} was called with arguments that do not fit — {problems}. "
                            "Nothing was requested; call it again with them corrected.") from None


def build_server(client: AsyncClient) -> MCPServer:
    server = _Server("cheqpoint", instructions=INSTRUCTIONS, version="0.1.0")

    @server.tool(name="request_human_approval", structured_output=False, description=(
        "Ask a human reviewer (in Slack) to approve an action before you take it. Returns APPROVED with the "
        "details to act on, REJECTED with the reviewer's note, or PENDING/TIMED_OUT with the approval id "
        "to check later with get_approval_status."))
    async def request_human_approval(
        action: Annotated[str, Field(description="What you want to do, in snake_case: issue_refund, "
                                                 "create_payout, cancel_subscription, send_email, …")],
        summary: Annotated[str, Field(description="One sentence the reviewer reads first.")],
        details: Annotated[dict[str, Any], Field(description="The action's parameters, as you would act on "
                                                             "them (amounts in minor units, e.g. amount_cents).")],
        justification: Annotated[str | None, Field(description="Why this action is right.")] = None,
        risk_level: Annotated[Literal["low", "medium", "high", "critical"] | None,
                              Field(description="Your estimate of the risk.")] = None,
        wait_seconds: Annotated[float | None, Field(ge=0, le=MAX_WAIT_SECONDS, description=(
            "Wait up to this long for the decision. Omit to return at once with PENDING."))] = None,
        execute: Annotated[bool, Field(description=(
            "true: for Stripe actions of the catalogue, Cheqpoint itself makes the Stripe call once approved. "
            "false (default): you act on the approved details yourself."))] = False,
    ) -> str:
        options = dict(justification=justification, risk_level=risk_level, execute=execute,
                       agent_name="mcp")
        try:
            if wait_seconds:
                approval = await client.request_sync(action, summary, details, timeout_ms=int(wait_seconds * 1000),
                                                     **options)
            else:
                approval = await client.request_async(action, summary, details, **options)
        except CheqpointClientError as exc:
            raise _failure(exc) from None
        return _text(_outcome(approval, waited=bool(wait_seconds)))

    @server.tool(name="get_approval_status", structured_output=False, description=(
        "The current state of an approval request made earlier with request_human_approval."))
    async def get_approval_status(
        approval_id: Annotated[str, Field(description="The approvalId request_human_approval returned.")],
        wait_seconds: Annotated[float | None, Field(ge=0, le=MAX_WAIT_SECONDS, description=(
            "Wait up to this long for a decision if it is still pending."))] = None,
    ) -> str:
        try:
            if wait_seconds:
                approval = await client.wait(approval_id, int(wait_seconds * 1000))
            else:
                approval = await client.get(approval_id)
        except CheqpointClientError as exc:
            raise _failure(exc) from None
        return _text(_outcome(approval, waited=bool(wait_seconds)))

    return server


async def serve_stdio(api_key: str | None = None, base_url: str | None = None) -> None:
    """Serve both tools on stdin/stdout until the client hangs up. Nothing else may write to stdout."""
    async with AsyncClient(api_key=api_key, base_url=base_url) as client:
        await build_server(client).run_stdio_async()


def main() -> None:
    """`cheqpoint-mcp`: the stdio server, configured by CHEQPOINT_URL and CHEQPOINT_CONNECTION_KEY."""
    import asyncio
    import sys

    try:
        asyncio.run(serve_stdio())
    except CheqpointClientError as exc:  # no key: said on stderr, as stdout carries the protocol
        print(f"cheqpoint-mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


__all__ = ["MAX_WAIT_SECONDS", "build_server", "main", "serve_stdio"]
