"""Block Kit pieces shared by the request message, the decided message and App Home.

Blocks are built with `slack_sdk.models` so Slack's own limits are checked when they are
serialised; text is cut to those limits here, before it could make a whole message fail.

Agent prose reaches reviewers as `plain_text` (the summary) or inside a labelled quote (the
justification, decision notes); every other outside value goes through `layout.literal`. Our mrkdwn
is `verbatim`, so Slack does not turn bare URLs or `#names` in it into links either.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot import layout
from bot.ids import ActionId, ButtonRef, review_actions_block_id

Approval = Mapping[str, Any]

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
# A summary or justification longer than this is cut; the full text stays in Cheqpoint.
PROSE_LIMIT = 1500

_RISK_MARKS = {"low": "🟢", "medium": "🟡", "high": "🟠", "critical": "🔴"}
_TEST_MODE_NOTE = "🧪 *TEST MODE* — Stripe test data; no real money moves."


def effective_details(approval: Approval) -> Mapping[str, Any]:
    """What would run: the reviewer's edit when there is one (CONTRACT §3)."""
    return approval.get("modifiedDetails") or approval.get("details") or {}


def title(approval: Approval, details: Mapping[str, Any] | None = None) -> str:
    return layout.headline(approval.get("action", ""), details or approval.get("details") or {})


def mrkdwn(text: str, limit: int = SECTION_LIMIT) -> MarkdownTextObject:
    """Our own mrkdwn (outside text in it already made literal), with Slack's auto-linking off."""
    return MarkdownTextObject(text=layout.truncate(text, limit), verbatim=True)


def mrkdwn_section(text: str, *, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(text=mrkdwn(text), block_id=block_id)


def plain_section(text: str) -> SectionBlock:
    """Outside prose as Slack shows plain text: no formatting, mentions or links are parsed."""
    return SectionBlock(text=PlainTextObject(text=layout.plain_text(text, PROSE_LIMIT), emoji=False))


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[mrkdwn(t) for t in texts])


def sections_from_lines(lines: Sequence[str], *, max_sections: int = 3) -> list[SectionBlock]:
    """Pack lines into as few sections as Slack's 3,000-character limit allows."""
    chunks: list[list[str]] = [[]]
    for item in lines:
        candidate = [*chunks[-1], item]
        if chunks[-1] and len("\n".join(candidate)) > SECTION_LIMIT:
            chunks.append([item])
        else:
            chunks[-1] = candidate
    sections = [mrkdwn_section("\n".join(chunk)) for chunk in chunks[:max_sections] if chunk]
    if len(chunks) > max_sections:
        sections.append(mrkdwn_section(f"_… {len(chunks) - max_sections} more part(s) in Cheqpoint._"))
    return sections


def quoted(text: str) -> str:
    """Outside prose as a quote, line by line; the caller puts a label above it."""
    return layout.quote_lines(text, PROSE_LIMIT)


def facts(
    approval: Approval, *, connection_name: str, test_mode: bool, details: Mapping[str, Any] | None = None
) -> list[Block]:
    """Header, who asks, the summary, the details, the justification and the agent's risk notes."""
    shown = details if details is not None else approval.get("details") or {}
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=layout.plain_text(title(approval, shown), HEADER_LIMIT))),
    ]
    if test_mode:
        blocks.append(context(_TEST_MODE_NOTE))
    blocks.append(context(requester_line(approval, connection_name)))
    if layout.one_line(approval.get("summary") or ""):  # Slack refuses an empty text object
        blocks.append(context("*Summary, as the agent wrote it:*"))
        blocks.append(plain_section(approval["summary"]))
    lines = layout.detail_lines(approval.get("action", ""), shown, test_mode=test_mode)
    blocks.extend(sections_from_lines(lines))
    if approval.get("justification"):
        blocks.append(mrkdwn_section("*Justification, as the agent wrote it:*\n" + quoted(approval["justification"])))
    assessment = assessment_fields(approval)
    if assessment:
        blocks.append(SectionBlock(fields=[mrkdwn(text, 2000) for text in assessment]))
    return blocks


def requester_line(approval: Approval, connection_name: str) -> str:
    parts = [f"Requested through *{layout.literal(connection_name, 100)}*"]
    if approval.get("agentName"):
        parts.append(f"by agent *{layout.literal(approval['agentName'], 100)}*")
    line = " ".join(parts)
    created = layout.slack_date(approval.get("createdAt"))
    if created:
        line += f" · {created}"
    return f"{line} · `{layout.literal(approval.get('approvalId', ''), 100)}`"


def assessment_fields(approval: Approval) -> list[str]:
    """The agent's own risk level and priority, as section fields (its name is in the requester line)."""
    fields = []
    risk = approval.get("riskLevel")
    if risk:
        mark = _RISK_MARKS.get(risk)
        fields.append(f"*Risk*\n{mark + ' ' if mark else ''}{layout.literal(risk, 20)}")
    if approval.get("riskScore") is not None:
        fields.append(f"*Risk score*\n{layout.literal(approval['riskScore'], 20)}")
    priority = approval.get("priority")
    if priority:
        mark = "⚡ " if priority == "urgent" else ""
        fields.append(f"*Priority*\n{mark}{layout.literal(priority, 20)}")
    metadata = approval.get("metadata") or {}
    if metadata:
        pairs = ", ".join(f"{key}: {value}" for key, value in metadata.items())
        fields.append(f"*Metadata*\n{layout.literal(pairs)}")
    if approval.get("trace"):
        trace = json.dumps(approval["trace"], separators=(",", ":"), ensure_ascii=False)
        fields.append(f"*Trace*\n`{layout.literal(trace)}`")
    return fields


def votes_line(approval: Approval) -> str | None:
    """`1 of 2 approvals so far: <@U1>` when more than one approver must agree."""
    required = approval.get("requiredApprovals") or 1
    if required <= 1:
        return None
    votes = approval.get("approvals") or []
    who = ", ".join(layout.actor(vote.get("by")) for vote in votes)
    text = f"*{len(votes)} of {required} approvals*"
    return f"{text}: {who}" if who else text


def review_reason(approval: Approval) -> str:
    """Why it is in front of people and until when."""
    parts = []
    if approval.get("rule"):
        parts.append(f"*Why review:* rule “{layout.literal(approval['rule'], 200)}”")
    else:
        parts.append("*Why review:* every request of this kind is reviewed")
    votes = votes_line(approval)
    if votes:
        parts.append(votes)
    expires = layout.slack_date(approval.get("expiresAt"))
    if expires:
        parts.append(f"*Expires:* {expires}")
    return "\n".join(parts)


def review_buttons(
    approval: Approval, *, version: int, confirm_over_minor: int | None = None, can_edit: bool = True
) -> ActionsBlock:
    """Approve, Reject and (when something may be changed) Edit, each pointing at this version."""
    approval_id = approval.get("approvalId", "")
    value = ButtonRef(approval_id=approval_id, version=version).dumps()
    buttons = [
        ButtonElement(
            text="Approve",
            action_id=ActionId.APPROVE,
            value=value,
            style="primary",
            confirm=_approve_confirm(approval, confirm_over_minor),
        ),
        ButtonElement(text="Reject", action_id=ActionId.REJECT, value=value, style="danger"),
    ]
    if can_edit:
        buttons.append(ButtonElement(text="Edit", action_id=ActionId.EDIT, value=value))
    return ActionsBlock(elements=buttons, block_id=review_actions_block_id(approval_id))


def _approve_confirm(approval: Approval, confirm_over_minor: int | None) -> ConfirmObject | None:
    """A second look before a large amount moves; small ones stay one click."""
    details = approval.get("details") or {}
    amount = details.get("amount_cents")
    if confirm_over_minor is None or not isinstance(amount, int) or amount <= confirm_over_minor:
        return None
    what = layout.literal(title(approval), 200)  # the dialog's text is mrkdwn
    return ConfirmObject(
        title="Approve a large amount?",
        text=f"{what}. Check the amount before you approve.",
        confirm="Approve",
        deny="Go back",
    )


def to_dicts(blocks: Iterable[Block]) -> list[dict]:
    return [block.to_dict() for block in blocks]


def notification_text(
    prefix: str, approval: Approval, *, test_mode: bool, details: Mapping[str, Any] | None = None
) -> str:
    """The message's plain `text`: what notifications and screen readers show."""
    mark = "[TEST MODE] " if test_mode else ""
    summary = approval.get("summary") or ""
    text = f"{mark}{prefix}: {layout.literal(title(approval, details), 200)}"
    if summary:
        text += f" — {layout.literal(summary, 400)}"
    return layout.truncate(text, 500)
