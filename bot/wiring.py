"""`install_slack(container)`: the Slack surface, named in `api.surfaces.installed`.

It builds the Bolt app, served at `POST /slack/events` (HTTP mode) or over Socket Mode when
`SLACK_APP_TOKEN` is set, and the `SlackSurface` the composition root subscribes to the approvals'
events and asks for its jobs (`bot.surface`).
"""

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.effects import Event, Subscriber
from api.approvals.models import Approval
from api.outbox.service import enqueue
from bot import inbound
from bot.app import CLIENT_TIMEOUT, Inflight, build_bolt_app, web_client
from bot.approvers import ApproverDirectory
from bot.blocks import AlertKind
from bot.budget import SlackBudget, store_for
from bot.bulk import BulkApprover
from bot.connections import SlackConnections
from bot.digest_render import DigestRenderer
from bot.digests import Digests
from bot.escalation import Escalations
from bot.messages import SlackReviewLinks
from bot.notifier import ALERT, POST, REMIND, UPDATE, Notifier, enqueue_execution_update, has_review_message, post_key
from bot.revisions import ASK_AGAIN, AskAgain
from bot.surface import SlackSurface

if TYPE_CHECKING:
    from api.main import Container

log = logging.getLogger(__name__)

# Events after which the review message no longer shows the truth.
_REFRESHING = frozenset({Event.VOTE, Event.APPROVED, Event.REJECTED, Event.EXPIRED, Event.CANCELLED,
                         Event.EXECUTED, Event.EXECUTION_FAILED, Event.VERIFIED})


def subscriber(alerts_channel: str | None) -> Subscriber:
    """Runs inside the approval's transaction, so it only enqueues."""

    async def on_event(session: AsyncSession, approval: Approval, event: Event) -> None:
        if event == Event.EXECUTION_UPDATED:  # a later outcome from Stripe: its own message, thread reply, alert
            await enqueue_execution_update(session, approval, alerts_channel)
            return
        if event == Event.CREATED:
            # Keyed by the request created in this very transaction: `fresh`, no lookup for an earlier job.
            await enqueue(session, POST, {"approval_id": approval.id}, key=post_key(approval.id), fresh=True)
            halfway = approval.created_at + (approval.expires_at - approval.created_at) / 2
            await enqueue(session, REMIND, {"approval_id": approval.id}, run_at=halfway,
                          key=f"slack.remind:{approval.id}", fresh=True)
        elif event in _REFRESHING and await has_review_message(session, approval):
            await enqueue(session, UPDATE, {"approval_id": approval.id})
        elif event == Event.REVISED:
            await enqueue(session, ASK_AGAIN, {"approval_id": approval.id, "revision": approval.revision})
        kind = _alert_kind(approval, event)
        if kind is not None and alerts_channel:
            await enqueue(session, ALERT, {"kind": kind, "approval_id": approval.id},
                          key=f"slack.alert:{kind}:{approval.id}")

    return on_event


def _alert_kind(approval: Approval, event: Event) -> str | None:
    if event == Event.EXECUTION_FAILED:
        return AlertKind.EXECUTION_FAILED
    if event == Event.EXPIRED:
        return AlertKind.EXPIRED
    if event == Event.APPROVED and (approval.decided_by or {}).get("type") == "rule":
        return AlertKind.AUTO_APPROVED  # `auto_decided` then `approved`: a rule moved money alone
    return None


def install_slack(container: "Container") -> SlackSurface | None:
    """The Slack surface for this deployment, or None when Slack is not configured (no bot token)."""
    settings = container.settings
    if not settings.slack_enabled:
        return None
    budget = SlackBudget(store_for(container.db))  # one per process; on PostgreSQL its state is shared
    connections = SlackConnections(timeout=CLIENT_TIMEOUT)  # one pool of kept-alive connections too
    client = web_client(settings, interactive=True, budget=budget, connections=connections)
    directory = ApproverDirectory(client, container.clock)
    container.authority.groups = directory  # who may decide is the core's call; Slack knows the groups
    inflight = Inflight()
    app = build_bolt_app(container, client=client, directory=directory, inflight=inflight)
    notifier = Notifier(web_client(settings, interactive=False, budget=budget, connections=connections), settings)
    asking = web_client(settings, interactive=False, budget=budget, connections=connections)
    tools = web_client(settings, interactive=False, budget=budget, connections=connections)  # digests, bulk, escalation
    policy, authority = container.authority.policy, container.authority
    digests, escalations = Digests(settings), Escalations(tools, settings, authority, directory)
    surface = SlackSurface(
        app=app, budget=budget, connections=connections, directory=directory, inflight=inflight, notifier=notifier,
        ask_again=AskAgain(asking, authority), digests=digests, renderer=DigestRenderer(tools, settings, policy),
        bulk=BulkApprover(tools, policy), escalations=escalations, clients=(client, notifier.client),
        subscribers=(subscriber(settings.alerts_channel), digests.subscriber(), escalations.subscriber()))
    container.review_links.register(SlackReviewLinks(container.db).review_url)
    if settings.slack_app_token is not None:
        surface.socket = AsyncSocketModeHandler(app, settings.slack_app_token.get_secret_value())
        log.info("Slack: Socket Mode (SLACK_APP_TOKEN is set); /slack/events is not served")
    else:
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        surface.events = events_router(AsyncSlackRequestHandler(app), secret)
    return surface


def slack_of(container: "Container") -> SlackSurface:
    """The installed Slack surface (tests and operators' tools reach its parts through it)."""
    surface = container.surface(SlackSurface.name)
    if not isinstance(surface, SlackSurface):
        raise LookupError("Slack is not installed (SLACK_BOT_TOKEN is not set)")
    return surface


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
