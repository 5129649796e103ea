"""What posting review messages costs on the wire and in the queue count: calls to Slack share kept-alive
connections, and the digests' "how deep is the queue" count gives the same answer at the threshold's edge."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from api.connections import service as connections
from api.main import build_container, create_app, running
from bot.wiring import slack_of
from tests.digest_helpers import digest_messages, refund
from tests.fakes.slack import FakeSlack
from tests.slack_helpers import ALERTS, APPROVER, REVIEW, SECRET, TOKEN, SlackHarness, slack_harness


class Peers:
    """ASGI middleware in front of the fake Slack: the client address of every Web API call, i.e.
    which TCP connection it came on."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen: list[tuple[str, tuple[str, int]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            self.seen.append((scope["path"].removeprefix("/api/"), tuple(scope["client"])))
        await self.inner(scope, receive, send)


@contextlib.asynccontextmanager
async def watched_slack(make_settings: Any, clock: Any) -> AsyncIterator[tuple[SlackHarness, Peers]]:
    fake = FakeSlack(token=TOKEN)
    peers = Peers(fake.app)
    fake.app = peers  # served as it is when `serving()` starts
    with fake.serving() as base_url:
        settings = make_settings(slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=base_url,
                                 review_channel=REVIEW, alerts_channel=ALERTS, approvers=[APPROVER])
        container = build_container(settings, clock=clock)
        async with running(container, worker=False):
            app = create_app(settings, container=container)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cheqpoint.test") \
                    as http:
                created = await container.db.write(lambda session: connections.create(session, "support-agent"))
                yield SlackHarness(fake, container, http, {"Authorization": f"Bearer {created.key}"}), peers


async def test_review_messages_posted_one_after_another_share_one_connection(make_settings, clock):
    async with watched_slack(make_settings, clock) as (slack, peers):
        for n in range(4):
            await slack.request(refund(n))
            await slack.settle()  # each posted before the next is filed: nothing runs side by side
        posts = [peer for method, peer in peers.seen if method == "chat.postMessage"]
        assert len(posts) == 4
        assert len(slack.fake.messages_in(REVIEW)) == 4
        # A connection (and a TLS handshake, against the real Slack) per call before: four here.
        assert len(set(posts)) == 1, posts
    # Closed with the app: nothing left open for the garbage collector to complain about.
    assert slack_of(slack.container).connections._session is None


async def test_the_queue_at_the_threshold_posts_each_request_and_one_more_makes_a_digest(make_settings, clock):
    async with slack_harness(make_settings, clock, slack_digest_threshold=4) as slack:
        for n in range(4):
            await slack.request(refund(n))
        await slack.settle()
        assert digest_messages(slack) == []  # four waiting is not more than four
        assert len(slack.fake.messages_in(REVIEW)) == 4

    async with slack_harness(make_settings, clock, slack_digest_threshold=4) as slack:
        for n in range(5):
            await slack.request(refund(n))
        await slack.settle()
        assert len(digest_messages(slack)) == 1  # five are: the group goes to one digest
        assert [m for m in slack.fake.messages_in(REVIEW) if m not in digest_messages(slack)] == []
