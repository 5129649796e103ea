"""The Slack adapter's outbox job kinds, beside the core's `api.outbox.kinds.JobKind`.

The values are what `jobs.kind` stores; the module constants elsewhere in bot/ (`notifier.POST`, …)
name these members so existing imports keep working.
"""

from enum import StrEnum


class SlackJob(StrEnum):
    POST_REQUEST = "slack.post_request"  # may be folded into a digest (bot.digests)
    UPDATE_MESSAGE = "slack.update_message"
    ALERT = "slack.alert"
    REMIND = "slack.remind"
    THREAD_REPLY = "slack.thread_reply"  # a later outcome from Stripe, told in the review message's thread
    ASK_AGAIN = "slack.ask_again"
    BULK_APPROVE = "slack.bulk_approve"
    ESCALATE = "slack.escalate"
    RENDER_DIGEST = "slack.digest_render"
