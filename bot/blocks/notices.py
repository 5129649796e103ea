"""One-line texts: reminders to approvers, the finance team's alerts, and later outcomes from Stripe."""

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from api.approvals.enums import ExecutionStatus
from bot import layout
from bot.blocks.common import Approval, effective_details, title
from bot.blocks.messages import error_text

# Slack's own permalinks and channel ids: the only outside values these texts turn into links.
_PERMALINK = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]+)?/[A-Za-z0-9/._~%?=&-]*", re.ASCII)
_CHANNEL = re.compile(r"[CDG][A-Z0-9]{2,40}", re.ASCII)


class AlertKind(StrEnum):
    EXECUTION_FAILED = "execution_failed"
    EXPIRED = "expired"
    AUTO_APPROVED = "auto_approved"
    EXECUTION_UPDATED = "execution_updated"  # Stripe reported a later outcome; the alert carries it


def reminder_text(approval: Approval, approvers: Sequence[str]) -> str:
    """Nudges the approvers (users and user groups) about a request still waiting."""
    who = " ".join(layout.mention(approver) for approver in approvers)
    text = f"⏰ {who} still waiting for a decision: *{layout.literal(title(approval), 200)}*".replace("⏰  ", "⏰ ")
    summary = approval.get("summary")
    if summary:
        text += f" — {layout.literal(summary, 200)}"
    expires = layout.slack_date(approval.get("expiresAt"))
    return f"{text} (expires {expires})" if expires else text


def alert_text(kind: AlertKind | str, approval: Approval, permalink: str | None, *,
               update: Mapping[str, Any] | None = None, test_mode: bool = False) -> str:
    """A finance alert: what happened to which request, and a link to its message.

    `update`: for EXECUTION_UPDATED, the execution as it was when Stripe's event was applied.
    """
    kind = AlertKind(kind)
    headline = layout.literal(title(approval, effective_details(approval)), 200)
    what = f"*{headline}* (`{layout.literal(approval.get('approvalId', ''), 100)}`)"
    if kind is AlertKind.EXECUTION_UPDATED:
        text = f"{execution_update_text(update or {}, test_mode=test_mode)} Request: {what}"
    elif kind is AlertKind.EXECUTION_FAILED:
        error = (approval.get("execution") or {}).get("error") or {}
        text = f"❌ Stripe call failed for approved request {what}: {error_text(error)}"
    elif kind is AlertKind.EXPIRED:
        text = f"⌛ Expired without a decision: {what}"
    else:
        rule = layout.literal(approval.get("rule") or "unnamed", 200)
        text = f"🤖 Approved automatically by rule “{rule}”: {what}"
    text = " ".join(text.split())  # one line, whatever the error message contained
    return f"{text} · <{permalink}|Open the request>" if permalink and _PERMALINK.fullmatch(permalink) else text


def delivery_failed_text(approval: Approval, what: str, channel: str, error: str) -> str:
    """Slack refused a post for a reason a person must fix; the request is still decidable."""
    headline = layout.literal(title(approval, effective_details(approval)), 200)
    ident = layout.literal(approval.get("approvalId", ""), 100)
    where = f"<#{channel}>" if _CHANNEL.fullmatch(channel) else layout.literal(channel, 40)
    text = (f"⚠️ Could not {layout.literal(what, 100)} for *{headline}* (`{ident}`) in {where}: "
            f"`{layout.literal(error, 200)}`. Fix the Slack set-up; meanwhile decide with "
            f"`cheqpoint approvals approve {ident}` or `reject {ident} --note …`.")
    return " ".join(text.split())


_OBJECT_NOUNS = {"refund": "refund", "payout": "payout", "dispute": "dispute"}


def execution_update_text(update: Mapping[str, Any], *, test_mode: bool) -> str:
    """`❌ Stripe reports the refund re_… is now *failed*: …`: a later outcome, in the thread and in alerts.

    `update` is `{"status", "stripeObjectId", "object", "objectStatus", "error"}`: the execution after
    the event, so the text says what that event changed even when a later one changed it again.
    """
    failed = update.get("status") == ExecutionStatus.FAILED
    noun = _OBJECT_NOUNS.get(str(update.get("object")), "object")
    object_id = update.get("stripeObjectId")
    link = f" {layout.stripe_link(object_id, test_mode=test_mode)}" if object_id else ""
    state = layout.escape(layout.humanize(update.get("objectStatus") or "updated"))
    text = f"{'❌' if failed else 'ℹ️'} Stripe reports the {noun}{link} is now *{state}*"
    if failed:
        text += f": {error_text(update.get('error') or {})}. The execution is now marked failed."
    else:
        text += "."
    return " ".join(text.split())
