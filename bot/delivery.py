"""Posting a review message (or a digest) exactly once, across crashes.

Slack may have posted a message whose answer never reached us (a process killed between Slack's
answer and storing the `ts`, a connection dropped on the way back). Each review message carries the
approval's id in Slack message metadata; a post that is being retried first looks for that message
in the channel's history around the request's creation, and adopts it instead of posting a second
one (which would keep its buttons forever). Digest messages carry their digest's id the same way,
under an event type of their own.
"""

from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

EVENT_TYPE = "cheqpoint_approval"
DIGEST_EVENT_TYPE = "cheqpoint_digest"
# How far before the request's creation the search starts (clocks between us and Slack differ a little).
LOOKBACK_SECONDS = 60.0
PAGE_SIZE = 200
MAX_PAGES = 10


def review_metadata(approval_id: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"approval_id": approval_id}}


def digest_metadata(digest_id: str) -> dict[str, Any]:
    return {"event_type": DIGEST_EVENT_TYPE, "event_payload": {"digest_id": digest_id}}


def _is_ours(message: dict[str, Any], event_type: str, key: str, value: str) -> bool:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != event_type:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get(key) == value


async def find_posted(client: AsyncWebClient, channel: str, approval_id: str, since: datetime) -> str | None:
    """The `ts` of the review message already posted for this approval, if Slack has one."""
    return await find_message(client, channel, EVENT_TYPE, "approval_id", approval_id, since)


async def find_posted_digest(client: AsyncWebClient, channel: str, digest_id: str, since: datetime) -> str | None:
    """The `ts` of the digest message already posted for this digest, if Slack has one."""
    return await find_message(client, channel, DIGEST_EVENT_TYPE, "digest_id", digest_id, since)


async def find_message(client: AsyncWebClient, channel: str, event_type: str, key: str, value: str,
                       since: datetime) -> str | None:
    """The `ts` of a message in the channel, posted after `since`, whose metadata names `key: value`."""
    cursor: str | None = None
    oldest = f"{since.timestamp() - LOOKBACK_SECONDS:.6f}"
    for _ in range(MAX_PAGES):
        response = await client.conversations_history(channel=channel, oldest=oldest, limit=PAGE_SIZE,
                                                      include_all_metadata=True, cursor=cursor)
        for message in response.get("messages") or []:
            if isinstance(message, dict) and _is_ours(message, event_type, key, value):
                return str(message["ts"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not response.get("has_more") or not cursor:
            return None
    return None
