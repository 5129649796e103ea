"""Slack's rate limits, as the fake enforces them: 429 with `Retry-After` (whole seconds).

`chat.postMessage` allows about one message per second per channel with a short burst; other
methods follow their tier, per workspace (https://api.slack.com/apis/rate-limits). Each limit is a
generic cell rate algorithm: `burst` calls at once, then one per interval.
"""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    per_second: float
    burst: int
    per_channel: bool = False


def per_minute(calls: int, burst: int) -> Limit:
    return Limit(calls / 60.0, burst)


TIER_1, TIER_2, TIER_3, TIER_4 = per_minute(1, 1), per_minute(20, 4), per_minute(50, 8), per_minute(100, 15)
SLACK_LIMITS: dict[str, Limit] = {
    "chat.postMessage": Limit(1.0, 5, per_channel=True),
    "chat.update": TIER_3,
    "chat.postEphemeral": TIER_4,
    "chat.getPermalink": TIER_4,
    "conversations.history": TIER_3,
    "conversations.info": TIER_3,
    "usergroups.users.list": TIER_2,
    "users.info": TIER_4,
    "views.open": TIER_4,
    "views.update": TIER_4,
    "views.push": TIER_4,
    "views.publish": TIER_4,
    "auth.test": TIER_4,
}


class RateLimiter:
    def __init__(self, limits: dict[str, Limit] | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.limits = dict(SLACK_LIMITS if limits is None else limits)
        self.clock = clock
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()
        self.refused = 0  # calls answered 429

    def retry_after(self, method: str, channel: str | None) -> int | None:
        """None when the call may go (and it is counted); otherwise the seconds to wait."""
        limit = self.limits.get(method)
        if limit is None:
            return None
        key = f"{method}:{channel}" if limit.per_channel else method
        interval = 1.0 / limit.per_second
        with self._lock:
            now = self.clock()
            tat = max(self._tat.get(key, now), now)
            allowed_at = tat - (limit.burst - 1) * interval
            if now < allowed_at:
                self.refused += 1
                return max(1, math.ceil(allowed_at - now))
            self._tat[key] = tat + interval
            return None
