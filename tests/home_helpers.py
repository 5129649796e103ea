"""Opening App Home and clicking in it over the signed Slack wire."""

import json
import time
from typing import Any

from bot.ids import review_actions_block_id
from tests.slack_helpers import SlackHarness, block_actions, event_callback, eventually, interactivity_body


async def open_home(slack: SlackHarness, user: str) -> dict[str, Any]:
    before = slack.fake.home_views.get(user)
    opened = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home",
              "event_ts": f"{time.time():.6f}"}
    body = json.dumps(event_callback(opened)).encode()
    assert (await slack.send(body, content_type="application/json")).status_code == 200
    return await eventually(lambda: (view := slack.fake.home_views.get(user)) is not before and view)


def home_ids(view: dict[str, Any]) -> list[str]:
    prefix = review_actions_block_id("")
    return [b["block_id"][len(prefix):] for b in view["blocks"] if b.get("block_id", "").startswith(prefix)]


def home_payload(view: dict[str, Any], user: str, action: dict[str, Any], block_id: str) -> dict[str, Any]:
    payload = block_actions(action["action_id"], action.get("value", ""), block_id, user=user, home_view_id=view["id"])
    payload["view"]["private_metadata"] = view.get("private_metadata") or ""
    payload["actions"][0].update(action)
    return payload


async def click_home(slack: SlackHarness, view: dict[str, Any], user: str, block_id: str, action_id: str,
                     **extra: Any) -> None:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    element = next(e for e in block["elements"] if e["action_id"] == action_id)
    action = {"action_id": action_id, "value": element.get("value", ""), **extra}
    await slack.send(interactivity_body(home_payload(view, user, action, block_id)))
