"""One-line texts: reminders to approvers and the finance team's alerts."""

from collections.abc import Sequence
from enum import StrEnum

from bot import layout
from bot.blocks.common import Approval, effective_details, title
from bot.blocks.messages import error_text


class AlertKind(StrEnum):
    EXECUTION_FAILED = "execution_failed"
    EXPIRED = "expired"
    AUTO_APPROVED = "auto_approved"


def reminder_text(approval: Approval, approvers: Sequence[str]) -> str:
    """Nudges the approvers (users and user groups) about a request still waiting."""
    who = " ".join(layout.mention(approver) for approver in approvers)
    text = f"⏰ {who} still waiting for a decision: *{layout.escape(title(approval))}*".replace("⏰  ", "⏰ ")
    summary = approval.get("summary")
    if summary:
        text += f" — {layout.escape(layout.truncate(' '.join(summary.split()), 200))}"
    expires = layout.slack_date(approval.get("expiresAt"))
    return f"{text} (expires {expires})" if expires else text


def alert_text(kind: AlertKind | str, approval: Approval, permalink: str | None) -> str:
    """A finance alert: what happened to which request, and a link to its message."""
    kind = AlertKind(kind)
    headline = layout.escape(title(approval, effective_details(approval)))
    what = f"*{headline}* (`{layout.escape(approval.get('approvalId', ''))}`)"
    if kind is AlertKind.EXECUTION_FAILED:
        error = (approval.get("execution") or {}).get("error") or {}
        text = f"❌ Stripe call failed for approved request {what}: {error_text(error)}"
    elif kind is AlertKind.EXPIRED:
        text = f"⌛ Expired without a decision: {what}"
    else:
        rule = layout.escape(approval.get("rule") or "unnamed")
        text = f"🤖 Approved automatically by rule “{rule}”: {what}"
    text = " ".join(text.split())  # one line, whatever the error message contained
    return f"{text} · <{permalink}|Open the request>" if permalink else text


def delivery_failed_text(approval: Approval, what: str, channel: str, error: str) -> str:
    """Slack refused a post for a reason a person must fix; the request is still decidable."""
    headline = layout.escape(title(approval, effective_details(approval)))
    ident = layout.escape(approval.get("approvalId", ""))
    text = (f"⚠️ Could not {layout.escape(what)} for *{headline}* (`{ident}`) in <#{layout.escape(channel)}>: "
            f"`{layout.escape(error)}`. Fix the Slack set-up; meanwhile decide with "
            f"`cheqpoint approvals approve {ident}` or `reject {ident} --note …`.")
    return " ".join(text.split())
