"""The App Home tab: requests waiting for review, with their buttons, and the latest decisions."""

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, DividerBlock, HeaderBlock, SectionBlock
from slack_sdk.models.views import View

from bot import layout
from bot.blocks.common import Approval, context, mrkdwn_section, review_buttons, title

VIEW_BLOCK_LIMIT = 100
# Decisions are history; waiting requests get the space.
RECENT_SHOWN = 15
_BLOCKS_PER_PENDING = 3  # section, buttons, divider
APPROVERS_ONLY_NOTE = "Latest decisions are shown to approvers only."
_OUTCOME_MARKS = {"approved": "✅", "rejected": "⛔", "expired": "⌛", "cancelled": "🚫"}


def app_home(
    pending: Sequence[Approval],
    recent: Sequence[Approval],
    *,
    test_mode: bool,
    confirm_over_minor: int | None = None,
    shows_decisions: bool = True,
) -> dict:
    """The home view. Each item is an approval dict (CONTRACT §3) that may also carry `version`
    (for the buttons' stale-click check; 0 when absent) and `connectionName`.

    `shows_decisions`: False for someone who approves nothing; they see a short note instead of
    the latest decisions (amounts, customers and who decided are not for every workspace member).
    Lists longer than Slack's 100-block limit allows end with "… and N more".
    """
    top: list[Block] = [HeaderBlock(text="Cheqpoint approvals")]
    if test_mode:
        top.append(context("🧪 *TEST MODE* — Stripe test data; no real money moves."))
    history = _recent_blocks(recent) if shows_decisions else [context(APPROVERS_ONLY_NOTE)]
    room = VIEW_BLOCK_LIMIT - len(top) - 1 - len(history)  # 1: the "waiting" heading
    waiting = _pending_blocks(pending, room, confirm_over_minor)
    heading = f"*Waiting for review ({len(pending)})*" if pending else "*Nothing is waiting for review.*"
    view = View(type="home", blocks=[*top, mrkdwn_section(heading), *waiting, *history])
    return view.to_dict()


def _pending_blocks(pending: Sequence[Approval], room: int, confirm_over_minor: int | None) -> list[Block]:
    fits = len(pending) if len(pending) * _BLOCKS_PER_PENDING <= room else (room - 1) // _BLOCKS_PER_PENDING
    blocks: list[Block] = []
    for approval in pending[:fits]:
        blocks.append(mrkdwn_section(_pending_text(approval)))
        version = int(approval.get("version") or 0)
        blocks.append(review_buttons(approval, version=version, confirm_over_minor=confirm_over_minor))
        blocks.append(DividerBlock())
    if fits < len(pending):
        blocks.append(context(f"… and {len(pending) - fits} more waiting in the review channel."))
    return blocks


def _pending_text(approval: Approval) -> str:
    text = f"*{layout.literal(title(approval), 200)}*"
    if approval.get("summary"):
        text += "\nThe agent's summary: " + layout.literal(approval["summary"], 300)
    about = [layout.literal(approval[key], 100) for key in ("connectionName", "agentName") if approval.get(key)]
    expires = layout.slack_date(approval.get("expiresAt"))
    if expires:
        about.append(f"expires {expires}")
    if about:
        text += "\n_" + " · ".join(about) + "_"
    return text


def _recent_blocks(recent: Sequence[Approval]) -> list[Block]:
    if not recent:
        return []
    blocks: list[Block] = [SectionBlock(text="*Latest decisions*")]
    blocks.extend(context(_recent_line(approval)) for approval in recent[:RECENT_SHOWN])
    if len(recent) > RECENT_SHOWN:
        blocks.append(context(f"… and {len(recent) - RECENT_SHOWN} more in `cheqpoint approvals list`."))
    return blocks


def _recent_line(approval: Approval) -> str:
    status = approval.get("status", "")
    details = approval.get("modifiedDetails") or approval.get("details") or {}
    mark = _OUTCOME_MARKS.get(status, "•")
    text = f"{mark} *{layout.literal(title(approval, details), 200)}* · {layout.literal(status, 20)}"
    if status in ("approved", "rejected"):
        text += f" by {layout.actor(approval.get('decidedBy'))}"
    when = layout.slack_date(approval.get("decidedAt"))
    return f"{text} · {when}" if when else text
