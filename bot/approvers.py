"""Slack's side of "who may decide": the members of Slack user groups.

Who may decide is the core's `api.approvals.authority.may_decide`, resolved from the current
policy and settings; this directory is the `GroupMembers` it asks for group members. Members come
from `usergroups.users.list`, cached briefly: a click should not cost a Slack round trip each time,
and someone removed from the group should lose the right within a minute.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CACHE_FOR = timedelta(seconds=60)


def is_group(slack_id: str) -> bool:
    return slack_id.startswith("S")


class ApproverDirectory:
    def __init__(self, client: AsyncWebClient, clock: Callable[[], datetime], *,
                 cache_for: timedelta = CACHE_FOR) -> None:
        self.client = client
        self.clock = clock
        self.cache_for = cache_for
        self._members: dict[str, tuple[datetime, frozenset[str]]] = {}

    async def members(self, group: str) -> frozenset[str]:
        now = self.clock()
        cached = self._members.get(group)
        if cached is not None and now - cached[0] < self.cache_for:
            return cached[1]
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            # Not cached: the next click asks again. Failing closed refuses; it never lets anyone in.
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
            log.warning("could not list the members of Slack user group %s (%s); its members cannot decide "
                        "until it can be read (is the usergroups:read scope granted?)", group, error)
            return frozenset()
        users = frozenset(response.get("users") or [])
        self._members[group] = (now, users)
        return users
