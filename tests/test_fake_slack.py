"""The fake Slack Web API, driven by the real slack_sdk client: it must refuse what Slack refuses."""

import json
import time

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import METHODS_DIR, FakeSlack, load_method_specs

TOKEN = "xoxb-test"
REVIEW = FakeSlack.REVIEW_CHANNEL


@pytest.fixture(scope="module")
def served():
    fake = FakeSlack(token=TOKEN)
    with fake.serving() as base_url:
        yield fake, base_url


@pytest.fixture
def fake(served):
    fake, _ = served
    fake.calls.clear()
    return fake


@pytest.fixture
def base_url(served):
    return served[1]


@pytest.fixture
def client(base_url):
    return AsyncWebClient(token=TOKEN, base_url=base_url)


async def slack_error(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        await call
    return raised.value


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(n: int) -> dict:
    return {"type": "button", "action_id": f"b{n}", "text": {"type": "plain_text", "text": "Go"}}


# -- auth -----------------------------------------------------------------------------------------------


async def test_auth_test_answers_with_the_bot_identity(client, fake):
    answer = await client.auth_test()
    assert answer["ok"] and answer["user_id"] == fake.bot_user_id
    assert fake.calls_to("auth.test") == [{}]


async def test_wrong_token_is_invalid_auth(base_url):
    error = await slack_error(AsyncWebClient(token="xoxb-wrong", base_url=base_url).auth_test())
    assert error.response["error"] == "invalid_auth"


async def test_no_token_is_not_authed(base_url):
    error = await slack_error(AsyncWebClient(base_url=base_url).auth_test())
    assert error.response["error"] == "not_authed"


# -- arguments ------------------------------------------------------------------------------------------


async def test_missing_required_arguments_are_named(client):
    error = await slack_error(client.api_call("chat.postMessage", json={"text": "hi"}))
    assert error.response["error"] == "missing_argument"
    assert "channel" in error.response["response_metadata"]["messages"][0]
    error = await slack_error(client.api_call("users.info", http_verb="GET", params={}))
    assert error.response["error"] == "missing_argument"


async def test_json_bodies_are_ignored_where_slack_ignores_them(client, fake):
    fake.add_user("U1")
    error = await slack_error(client.api_call("users.info", json={"user": "U1"}))
    assert error.response["error"] == "missing_argument"
    assert (await client.users_info(user="U1"))["user"]["id"] == "U1"


async def test_form_bodies_with_json_encoded_blocks_are_read(base_url, fake):
    blocks = json.dumps([section("hello")])
    async with httpx.AsyncClient() as http:
        answer = (
            await http.post(
                base_url + "chat.postMessage",
                data={"channel": REVIEW, "text": "hi", "blocks": blocks},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        ).json()
    assert answer["ok"], answer
    assert fake.message(REVIEW, answer["ts"])["blocks"] == [section("hello")]


def test_required_arguments_come_from_slacks_method_specs():
    if not METHODS_DIR.is_dir():
        pytest.skip(f"Slack method specs not vendored at {METHODS_DIR}")
    specs = load_method_specs()
    assert specs["chat.update"].required == ("ts", "channel")
    assert specs["chat.postMessage"].json_input and not specs["users.info"].json_input


# -- messages -------------------------------------------------------------------------------------------


async def test_messages_get_a_ts_and_updates_change_them(client, fake):
    posted = await client.chat_postMessage(channel=REVIEW, text="first", blocks=[section("one")])
    ts = posted["ts"]
    assert fake.message(REVIEW, ts)["text"] == "first"
    await client.chat_update(channel=REVIEW, ts=ts, text="second", blocks=[section("two")])
    message = fake.message(REVIEW, ts)
    assert (message["text"], message["blocks"], message["edits"]) == ("second", [section("two")], 1)
    assert [args["text"] for args in fake.calls_to("chat.update")] == ["second"]


async def test_update_of_an_unknown_message_is_message_not_found(client):
    error = await slack_error(client.chat_update(channel=REVIEW, ts="1.000000", text="x"))
    assert error.response["error"] == "message_not_found"


async def test_message_without_text_or_blocks_is_no_text(client):
    error = await slack_error(client.api_call("chat.postMessage", json={"channel": REVIEW}))
    assert error.response["error"] == "no_text"


async def test_unknown_channel_and_channel_without_the_bot(client, fake):
    error = await slack_error(client.chat_postMessage(channel="C0NOWHERE", text="x"))
    assert error.response["error"] == "channel_not_found"
    fake.add_channel("C0OUTSIDE", member=False)
    error = await slack_error(client.chat_postMessage(channel="C0OUTSIDE", text="x"))
    assert error.response["error"] == "not_in_channel"
    assert (await client.conversations_info(channel="C0OUTSIDE"))["channel"]["is_member"] is False


async def test_permalinks_and_ephemerals(client, fake):
    ts = (await client.chat_postMessage(channel=REVIEW, text="x"))["ts"]
    link = await client.chat_getPermalink(channel=REVIEW, message_ts=ts)
    assert link["permalink"].endswith(ts.replace(".", ""))
    await client.chat_postEphemeral(channel=REVIEW, user="U9", text="Only approvers can decide.")
    assert fake.ephemerals[-1]["user"] == "U9"


@pytest.mark.parametrize(
    ("blocks", "complaint"),
    [
        ([section("x")] * 51, "no more than 50 items"),
        ([section("x" * 3001)], "less than 3001 characters"),
        ([{"text": {"type": "mrkdwn", "text": "x"}}], "missing required field: type"),
        ([{"type": "carousel"}], "unsupported type"),
        ([{"type": "actions", "elements": [button(n) for n in range(26)]}], "no more than 25 items"),
        ([{"type": "actions", "elements": [button(1), button(1)]}], "duplicate action_id"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}], "plain_text text object"),
    ],
    ids=["51 blocks", "long section", "no type", "unknown type", "26 buttons", "same action_id", "mrkdwn header"],
)
async def test_blocks_slack_would_reject_are_invalid_blocks(client, blocks, complaint):
    error = await slack_error(client.chat_postMessage(channel=REVIEW, text="x", blocks=blocks))
    assert error.response["error"] == "invalid_blocks"
    assert any(complaint in message for message in error.response["response_metadata"]["messages"])


# -- views ----------------------------------------------------------------------------------------------


def modal(blocks: list[dict]) -> dict:
    return {"type": "modal", "title": {"type": "plain_text", "text": "Reject"}, "blocks": blocks}


async def test_views_open_needs_a_fresh_trigger_and_a_valid_view(client, fake):
    opened = await client.views_open(trigger_id="t1", view=modal([section("x")]))
    assert opened["view"]["id"] in fake.views
    error = await slack_error(client.views_open(trigger_id="t1", view=modal([section("x")])))
    assert error.response["error"] == "exchanged_trigger_id"
    error = await slack_error(client.views_open(trigger_id="t2", view=modal([section("x")] * 101)))
    assert error.response["error"] == "invalid_arguments"
    note = {
        "type": "input",
        "label": {"type": "plain_text", "text": "Why"},
        "element": {"type": "plain_text_input", "action_id": "note"},
    }
    error = await slack_error(client.views_open(trigger_id="t3", view=modal([note])))
    assert "submit" in error.response["response_metadata"]["messages"][0]


async def test_views_update_and_push(client, fake):
    view_id = (await client.views_open(trigger_id="t10", view=modal([section("x")])))["view"]["id"]
    await client.views_update(view_id=view_id, view=modal([section("changed")]))
    assert fake.views[view_id]["blocks"] == [section("changed")]
    error = await slack_error(client.views_update(view_id="V404", view=modal([section("x")])))
    assert error.response["error"] == "not_found"
    assert (await client.views_push(trigger_id="t11", view=modal([section("y")])))["ok"]


async def test_views_publish_keeps_one_home_per_user(client, fake):
    home = {"type": "home", "blocks": [section("home")]}
    first = await client.views_publish(user_id="U1", view=home)
    second = await client.views_publish(user_id="U1", view=home)
    assert first["view"]["id"] == second["view"]["id"] == fake.home_views["U1"]["id"]


# -- directory ------------------------------------------------------------------------------------------


async def test_usergroups_and_users(client, fake):
    fake.add_usergroup("S0FINANCE", ["U1", "U2"])
    assert (await client.usergroups_users_list(usergroup="S0FINANCE"))["users"] == ["U1", "U2"]
    error = await slack_error(client.usergroups_users_list(usergroup="S0NONE"))
    assert error.response["error"] == "no_such_subteam"
    error = await slack_error(client.users_info(user="U0NOBODY"))
    assert error.response["error"] == "user_not_found"


# -- injected failures ----------------------------------------------------------------------------------


async def test_rate_limit_is_retried_after_retry_after_by_slack_sdk(base_url, fake):
    client = AsyncWebClient(
        token=TOKEN, base_url=base_url, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
    )
    fake.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1)
    started = time.monotonic()
    answer = await client.chat_postMessage(channel=REVIEW, text="after the limit")
    assert answer["ok"]
    assert time.monotonic() - started >= 1  # the handler waited Retry-After seconds
    assert len(fake.calls_to("chat.postMessage")) == 2


async def test_rate_limit_without_a_retry_handler_surfaces_429_and_retry_after(client, fake):
    fake.fail_next("chat.postMessage", error="ratelimited", retry_after=7)
    error = await slack_error(client.chat_postMessage(channel=REVIEW, text="x"))
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert error.response["error"] == "ratelimited"


async def test_server_errors_and_error_codes_can_be_injected(client, fake):
    fake.fail_next("chat.update", status=500)
    fake.fail_next("views.publish", error="channel_not_found")
    error = await slack_error(client.chat_update(channel=REVIEW, ts="1.0", text="x"))
    assert error.response.status_code == 500
    error = await slack_error(client.views_publish(user_id="U1", view={"type": "home", "blocks": []}))
    assert (error.response.status_code, error.response["error"]) == (200, "channel_not_found")
    # each failure is used once
    assert (await client.views_publish(user_id="U1", view={"type": "home", "blocks": [section("x")]}))["ok"]
