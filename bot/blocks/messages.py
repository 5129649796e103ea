"""The review-channel message: while pending (with buttons) and once decided (without)."""

from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import Block, ButtonElement, DividerBlock

from api.approvals.enums import ApprovalStatus, ExecutionStatus
from bot import layout
from bot.blocks.common import (
    Approval,
    context,
    effective_details,
    facts,
    mrkdwn_section,
    notification_text,
    quoted,
    review_buttons,
    review_reason,
    to_dicts,
    votes_line,
)
from bot.blocks.facts import stripe_facts_blocks
from bot.ids import ActionId, BlockId, ButtonRef

# Object statuses Stripe reaches after the call succeeded, shown on the message once its webhook says so.
_LATER_STATUSES = frozenset({"paid", "won", "lost", "warning_closed"})
_OUTCOME_MARKS = {ApprovalStatus.APPROVED: "✅", ApprovalStatus.REJECTED: "⛔", ApprovalStatus.EXPIRED: "⌛",
                  ApprovalStatus.CANCELLED: "🚫"}


def review_message(
    approval: Approval,
    *,
    connection_name: str,
    test_mode: bool,
    version: int,
    confirm_over_minor: int | None = None,
    can_edit: bool = True,
    stripe_configured: bool = False,
) -> tuple[str, list[dict]]:
    """A pending request as posted for review: every fact a reviewer needs, then the buttons.

    `confirm_over_minor`: amounts (minor units) above it get a confirmation dialog on Approve.
    `can_edit`: False for actions with nothing a reviewer may change (no Edit button).
    `stripe_configured`: a catalogue write without Stripe's facts then says it is not verified.
    `approval["reviewingBy"]`: the Slack users who said "I'm on it", shown above the buttons.
    """
    # A revised request shows the revision being voted on, and says who changed what.
    blocks: list[Block] = facts(approval, connection_name=connection_name, test_mode=test_mode,
                                details=effective_details(approval))
    blocks.extend(stripe_facts_blocks(approval, stripe_configured=stripe_configured, test_mode=test_mode))
    if approval.get("revisedBy"):
        lines = layout.change_lines(approval.get("changes") or {}, approval.get("details") or {})
        blocks.append(mrkdwn_section(f"✏️ *Changed by {layout.actor(approval['revisedBy'])}* — votes were reset: "
                                     "earlier approvals no longer count, approvers please review again\n"
                                     + "\n".join(lines)))
    blocks.append(mrkdwn_section(review_reason(approval)))
    reviewing = approval.get("reviewingBy") or []
    if reviewing:
        blocks.append(context("👀 Reviewing: " + " ".join(layout.mention(user) for user in reviewing)))
    buttons = review_buttons(approval, version=version, confirm_over_minor=confirm_over_minor, can_edit=can_edit)
    # Claiming goes last: the first three stay Approve, Reject, Edit wherever they are shown.
    value = ButtonRef(approval_id=approval.get("approvalId", ""), version=version).dumps()
    buttons.elements.append(ButtonElement(text="I'm on it", action_id=ActionId.CLAIM, value=value))
    blocks.append(buttons)
    return notification_text("Approval needed", approval, test_mode=test_mode), to_dicts(blocks)


def decided_message(
    approval: Approval, *, connection_name: str, test_mode: bool, stripe_configured: bool = False
) -> tuple[str, list[dict]]:
    """A request that is no longer pending: the same facts, the outcome and the execution; no buttons."""
    shown = effective_details(approval)
    blocks: list[Block] = facts(approval, connection_name=connection_name, test_mode=test_mode, details=shown)
    blocks.extend(stripe_facts_blocks(approval, stripe_configured=stripe_configured, test_mode=test_mode))
    blocks.append(DividerBlock())
    blocks.append(mrkdwn_section(outcome_text(approval), block_id=BlockId.OUTCOME))
    changes = approval.get("changes") or {}
    if changes:
        original = approval.get("details") or {}
        lines = layout.change_lines(changes, original)
        blocks.append(mrkdwn_section("*Changed by the reviewer*\n" + "\n".join(lines)))
    execution = execution_text(approval, test_mode=test_mode)
    if execution:
        blocks.append(mrkdwn_section(execution))
    if approval.get("rule"):
        blocks.append(context(f"Policy rule: “{layout.literal(approval['rule'], 200)}”"))
    status = str(approval.get("status", "decided")).capitalize()
    return notification_text(status, approval, test_mode=test_mode, details=shown), to_dicts(blocks)


def outcome_text(approval: Approval) -> str:
    """`✅ *Approved* by <@U1> · <date>`, the votes and the note."""
    status = approval.get("status", "")
    mark = _OUTCOME_MARKS.get(status, "•")
    when = layout.slack_date(approval.get("decidedAt"))
    if status == ApprovalStatus.EXPIRED:
        head = f"{mark} *Expired* — nobody decided in time"
    elif status == ApprovalStatus.CANCELLED:
        head = f"{mark} *Cancelled* by {_canceller(approval.get('decidedBy'))}"
    else:
        verdict = layout.literal(status.capitalize() or "Decided", 40)
        head = f"{mark} *{verdict}* by {layout.actor(approval.get('decidedBy'))}"
    if when:
        head += f" · {when}"
    parts = [head]
    votes = votes_line(approval)
    if votes and status == ApprovalStatus.APPROVED:
        parts.append(votes)
    note = approval.get("decisionNote")
    if note:
        parts.append("*Note:*\n" + quoted(note))
    return "\n".join(parts)


def _canceller(decided_by: Mapping[str, Any] | None) -> str:
    # The intake API's cancel is the agent's own call; anything else names who did it.
    if not decided_by or decided_by.get("type") == "system":
        return "the agent"
    return layout.actor(decided_by)


def execution_text(approval: Approval, *, test_mode: bool) -> str | None:
    """Where the Stripe call stands, once there is one to speak of."""
    execution = approval.get("execution") or {}
    status = execution.get("status")
    if approval.get("status") != ApprovalStatus.APPROVED:
        return None
    if status == ExecutionStatus.QUEUED:
        return "⏳ *Stripe:* queued"
    if status == ExecutionStatus.RUNNING:
        return "⏳ *Stripe:* running"
    if status == ExecutionStatus.SUCCEEDED:
        object_id = execution.get("stripeObjectId")
        done = layout.stripe_link(object_id, test_mode=test_mode) if object_id else "done"
        # A later status Stripe reported (a payout paid, a dispute won) is shown beside the object.
        later = (execution.get("result") or {}).get("status")
        shown = f" · now *{layout.escape(layout.humanize(later))}*" if later in _LATER_STATUSES else ""
        return f"✅ *Stripe:* succeeded — {done}{shown}"
    if status == ExecutionStatus.FAILED:
        return f"❌ *Stripe:* failed — {error_text(execution.get('error') or {})}"
    return "ℹ️ Cheqpoint does not run this one: the agent acts on the decision."


def error_text(error: Mapping[str, Any]) -> str:
    """`card_error` · `charge_already_refunded`: the message."""
    kinds = [f"`{layout.literal(error[key], 100)}`" for key in ("type", "code") if error.get(key)]
    message = layout.literal(error.get("message") or "no message", 500)
    return f"{' · '.join(kinds)}: {message}" if kinds else message
