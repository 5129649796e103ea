"""Posting a review message exactly once, across crashes.

Slack may have posted a message whose answer never reached us (a process killed between Slack's
answer and storing the `ts`, a connection dropped on the way back). Each review message carries the
approval's id in Slack message metadata; a post that is being retried first looks for that message
in the channel's history around the request's creation, and adopts it instead of posting a second
one (which would keep its buttons forever).
"""

from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

EVENT_TYPE = "cheqpoint_approval"
# How far before the request's creation the search starts (clocks between us and Slack differ a little).
LOOKBACK_SECONDS = 60.0
PAGE_SIZE = 200
MAX_PAGES = 10


def review_metadata(approval_id: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"approval_id": approval_id}}


def _is_ours(message: dict[str, Any], approval_id: str) -> bool:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("approval_id") == approval_id


async def find_posted(client: AsyncWebClient, channel: str, approval_id: str, since: datetime) -> str | None:
    """The `ts` of the review message already posted for this approval, if Slack has one."""
    cursor: str | None = None
    oldest = f"{since.timestamp() - LOOKBACK_SECONDS:.6f}"
    for _ in range(MAX_PAGES):
        response = await client.conversations_history(channel=channel, oldest=oldest, limit=PAGE_SIZE,
                                                      include_all_metadata=True, cursor=cursor)
        for message in response.get("messages") or []:
            if isinstance(message, dict) and _is_ours(message, approval_id):
                return str(message["ts"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not response.get("has_more") or not cursor:
            return None
    return None
