"""Slack as a decision surface: its own parts (the Bolt app, the rate budget, the notifier, the
listeners in flight) live here, not in the core's Container, and the core reaches them only
through the `DecisionSurface` port (`api.surfaces.port`)."""

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import APIRouter
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.effects import Event, Subscriber
from api.approvals.models import Approval
from api.metrics import Metrics, instrument_slack
from api.outbox.registry import JobRegistry
from api.surfaces.port import DecisionSurface
from bot.app import Inflight
from bot.approvers import ApproverDirectory
from bot.budget import SlackBudget
from bot.bulk import BulkApprover
from bot.connections import SlackConnections
from bot.digest_batch import absorb_many
from bot.digest_render import DigestRenderer
from bot.digests import POST_KIND, RENDER, Digests
from bot.escalation import Escalations
from bot.notifier import Notifier
from bot.revisions import AskAgain


@dataclass
class SlackSurface(DecisionSurface):
    app: AsyncApp  # the Bolt app: listeners decide through Container.decisions
    budget: SlackBudget  # one per process; on PostgreSQL its state is shared
    connections: SlackConnections  # the Web API clients' kept-alive connections, closed at shutdown
    directory: ApproverDirectory  # user groups, also given to the core's Authority
    inflight: Inflight  # listener work after its ack, awaited at shutdown (and by tests)
    notifier: Notifier  # the outbox's posting, updating and reminding
    ask_again: AskAgain
    digests: Digests
    renderer: DigestRenderer
    bulk: BulkApprover
    escalations: Escalations
    clients: Sequence[AsyncWebClient]  # every Web API client above, for the metrics
    subscribers: Sequence[Subscriber]  # in order: messages, digests, escalation
    socket: AsyncSocketModeHandler | None = None  # Socket Mode (SLACK_APP_TOKEN) instead of HTTP events
    events: APIRouter | None = None  # POST /slack/events, in HTTP mode
    name = "slack"

    async def notify(self, session: AsyncSession, approval: Approval, event: Event) -> None:
        for subscriber in self.subscribers:
            await subscriber(session, approval, event)

    def register_jobs(self, registry: JobRegistry) -> None:
        self.notifier.register(registry)
        self.ask_again.register(registry)
        self.digests.wrap_posting(registry)  # in front of the notifier's post job, registered above
        # Several due posts at once: one snapshot read and one store for the lot (after the wrap,
        # which registers the kind again). Each request still passes the digests' check first, the
        # batch's in one read (bot.digest_batch).
        post = registry.get(POST_KIND)
        if post is not None:
            registry.register_batch(POST_KIND, functools.partial(
                self.notifier.post_requests, single=post.handler,
                absorb=functools.partial(absorb_many, self.digests)))
        registry.register(RENDER, self.renderer.run)
        self.bulk.register(registry)
        self.escalations.register(registry)

    @property
    def routers(self) -> Sequence[APIRouter]:
        return (self.events,) if self.events is not None else ()

    async def start(self) -> None:
        if self.socket is not None:
            await self.socket.connect_async()

    async def close(self) -> None:
        await self.inflight.idle()  # a decision being recorded is not cut off
        if self.socket is not None:
            await self.socket.close_async()
        await self.connections.close()

    def instrument(self, metrics: Metrics) -> None:
        for client in {id(c): c for c in self.clients}.values():  # once each, however often listed
            instrument_slack(client, metrics)
