"""`install_slack(container)`: the Slack adapter plugged into the composition root.

It builds the Bolt app, serves it at `POST /slack/events` (HTTP mode) or over Socket Mode when
`SLACK_APP_TOKEN` is set, subscribes to the approvals' effects and registers the Slack jobs.
"""

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.models import Approval
from api.outbox.service import enqueue
from bot import inbound
from bot.app import Inflight, build_bolt_app, web_client
from bot.approvers import ApproverDirectory
from bot.blocks import AlertKind
from bot.budget import SlackBudget, store_for
from bot.bulk import BulkApprover
from bot.digest_render import DigestRenderer
from bot.digests import RENDER, Digests
from bot.escalation import Escalations
from bot.messages import SlackReviewLinks
from bot.notifier import ALERT, POST, REMIND, UPDATE, Notifier, enqueue_execution_update, has_review_message, post_key
from bot.revisions import ASK_AGAIN, AskAgain

log = logging.getLogger(__name__)

# Events after which the review message no longer shows the truth.
_REFRESHING = frozenset({"vote", "approved", "rejected", "expired", "cancelled", "executed", "execution_failed",
                         "verified"})


def subscriber(alerts_channel: str | None) -> Any:
    """Runs inside the approval's transaction, so it only enqueues."""

    async def on_event(session: AsyncSession, approval: Approval, event: str) -> None:
        if event == "execution_updated":  # a later outcome from Stripe: its own message, thread reply, alert
            await enqueue_execution_update(session, approval, alerts_channel)
            return
        if event == "created":
            await enqueue(session, POST, {"approval_id": approval.id}, key=post_key(approval.id))
            halfway = approval.created_at + (approval.expires_at - approval.created_at) / 2
            await enqueue(session, REMIND, {"approval_id": approval.id}, run_at=halfway,
                          key=f"slack.remind:{approval.id}")
        elif event in _REFRESHING and await has_review_message(session, approval):
            await enqueue(session, UPDATE, {"approval_id": approval.id})
        elif event == "revised":
            await enqueue(session, ASK_AGAIN, {"approval_id": approval.id, "revision": approval.revision})
        kind = _alert_kind(approval, event)
        if kind is not None and alerts_channel:
            await enqueue(session, ALERT, {"kind": kind, "approval_id": approval.id},
                          key=f"slack.alert:{kind}:{approval.id}")

    return on_event


def _alert_kind(approval: Approval, event: str) -> str | None:
    if event == "execution_failed":
        return AlertKind.EXECUTION_FAILED
    if event == "expired":
        return AlertKind.EXPIRED
    if event == "approved" and (approval.decided_by or {}).get("type") == "rule":
        return AlertKind.AUTO_APPROVED  # `auto_decided` then `approved`: a rule moved money alone
    return None


def install_slack(container: Any) -> None:
    settings = container.settings
    budget = SlackBudget(store_for(container.db))  # one per process; on PostgreSQL its state is shared
    client = web_client(settings, interactive=True, budget=budget)
    directory = ApproverDirectory(client, settings.approvers, container.clock)
    container.authority.groups = directory  # who may decide is the core's call; Slack knows the groups
    inflight = Inflight()
    app = build_bolt_app(container, client=client, directory=directory, inflight=inflight)
    notifier = Notifier(web_client(settings, interactive=False, budget=budget), settings, directory)
    notifier.register(container.registry)
    AskAgain(web_client(settings, interactive=False, budget=budget), container.authority).register(container.registry)
    container.effects.subscribe(subscriber(settings.alerts_channel))
    container.review_links.register(SlackReviewLinks(container.db).review_url)
    install_reviewing_tools(container, directory, web_client(settings, interactive=False, budget=budget))
    extras = container.extras
    extras.update(slack_app=app, slack_budget=budget, slack_notifier=notifier, slack_inflight=inflight,
                  slack_approvers=directory)
    extras.setdefault("on_close", []).append(inflight.idle)

    if settings.slack_app_token is not None:
        socket = AsyncSocketModeHandler(app, settings.slack_app_token.get_secret_value())
        extras.setdefault("on_start", []).append(socket.connect_async)
        extras["on_close"].append(socket.close_async)
        log.info("Slack: Socket Mode (SLACK_APP_TOKEN is set); /slack/events is not served")
        return
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    extras.setdefault("routers", []).append(events_router(AsyncSlackRequestHandler(app), secret))


def install_reviewing_tools(container: Any, directory: ApproverDirectory, client: AsyncWebClient) -> None:
    """Digests (in front of the post job), bulk approval and escalation; `client` is the outbox's."""
    settings, registry, policy = container.settings, container.registry, container.authority.policy
    digests = Digests(settings)
    digests.wrap_posting(registry)
    registry.register(RENDER, DigestRenderer(client, settings, policy).run)
    BulkApprover(client, policy).register(registry)
    escalations = Escalations(client, settings, container.authority, directory)
    escalations.register(registry)
    container.effects.subscribe(digests.subscriber())
    container.effects.subscribe(escalations.subscriber())


def events_router(handler: AsyncSlackRequestHandler, signing_secret: str) -> APIRouter:
    router = APIRouter()

    @router.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        # Checked here before Bolt sees it (see bot.inbound): Bolt gets only signed, readable
        # requests, so it never logs an unverified body nor fails on a malformed one.
        body = await request.body()
        refusal = inbound.check(signing_secret, body, request.headers)
        if refusal is not None:
            log.info("Slack request refused with %s: %s", refusal.status, refusal.reason)
            return JSONResponse({"error": refusal.reason}, status_code=refusal.status)
        try:
            return await handler.handle(request)  # Bolt verifies again and answers url_verification
        except Exception as exc:  # a signed payload Bolt could not take apart; its text is not logged
            log.error("Slack request could not be handled: %s", type(exc).__name__)
            return JSONResponse({"error": "the request could not be read"}, status_code=400)

    return router
