"""The fake Slack Web API: `from tests.fakes.slack import FakeSlack`."""

from tests.fakes.slack.blockkit import MESSAGE_BLOCK_LIMIT, VIEW_BLOCK_LIMIT, block_problems, view_problems
from tests.fakes.slack.fake import FakeSlack
from tests.fakes.slack.limits import SLACK_LIMITS, Limit, RateLimiter
from tests.fakes.slack.specs import METHODS_DIR, Call, MethodSpec, SlackError, load_method_specs

__all__ = ["MESSAGE_BLOCK_LIMIT", "METHODS_DIR", "SLACK_LIMITS", "VIEW_BLOCK_LIMIT", "Call", "FakeSlack", "Limit",
           "MethodSpec", "RateLimiter", "SlackError", "block_problems", "load_method_specs", "view_problems"]
