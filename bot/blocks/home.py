"""The App Home tab: requests waiting for review, with their buttons, and the latest decisions."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    HeaderBlock,
    Option,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from api.approvals.enums import ApprovalStatus
from bot import layout
from bot.blocks.common import Approval, context, mrkdwn_section, review_buttons, title
from bot.ids import ActionId

ANY = "*"  # the filter option that keeps everything
FILTERS_BLOCK_ID = "home.filters"
PAGER_BLOCK_ID = "home.pages"
PAGE_PREVIOUS = f"{ActionId.HOME_PAGE}.prev"
PAGE_NEXT = f"{ActionId.HOME_PAGE}.next"


@dataclass(frozen=True)
class HomeQueue:
    """The approver's own queue around the page shown: how many wait in all, the page, the filters
    (value, label) and their current choice, and the state the view's metadata carries."""

    total: int
    page: int
    pages: int
    connections: Sequence[tuple[str, str]] = field(default_factory=list)
    actions: Sequence[tuple[str, str]] = field(default_factory=list)
    connection: str = ANY
    action: str = ANY
    previous_state: str = ""  # the metadata of the page before / after, for the pager's buttons
    next_state: str = ""
    state: str = ""

VIEW_BLOCK_LIMIT = 100
# Decisions are history; waiting requests get the space.
RECENT_SHOWN = 15
_BLOCKS_PER_PENDING = 3  # section, buttons, divider
APPROVERS_ONLY_NOTE = "Latest decisions are shown to approvers only."
_OUTCOME_MARKS = {ApprovalStatus.APPROVED: "✅", ApprovalStatus.REJECTED: "⛔", ApprovalStatus.EXPIRED: "⌛",
                  ApprovalStatus.CANCELLED: "🚫"}


def app_home(
    pending: Sequence[Approval],
    recent: Sequence[Approval],
    *,
    test_mode: bool,
    confirm_over_minor: int | None = None,
    shows_decisions: bool = True,
    queue: HomeQueue | None = None,
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
    total = queue.total if queue is not None else len(pending)
    if queue is not None and (queue.connections or queue.actions):
        top.append(_filters(queue))
    pager = _pager(queue) if queue is not None and queue.pages > 1 else []
    room = VIEW_BLOCK_LIMIT - len(top) - 1 - len(history) - len(pager)  # 1: the "waiting" heading
    waiting = _pending_blocks(pending, room, confirm_over_minor)
    heading = f"*Waiting for review ({total})* · oldest first" if total else "*Nothing is waiting for review.*"
    view = View(type="home", blocks=[*top, mrkdwn_section(heading), *waiting, *pager, *history],
                private_metadata=queue.state if queue is not None and queue.state else None)
    return view.to_dict()


def _filters(queue: HomeQueue) -> ActionsBlock:
    def select(action_id: str, everything: str, choices: Sequence[tuple[str, str]], chosen: str) -> StaticSelectElement:
        options = [Option(value=ANY, text=everything),
                   *(Option(value=value, text=layout.truncate(label, 75)) for value, label in choices[:99])]
        initial = next((o for o in options if o.value == chosen), options[0])
        return StaticSelectElement(action_id=action_id, options=options, initial_option=initial,
                                   placeholder=everything)

    return ActionsBlock(block_id=FILTERS_BLOCK_ID, elements=[
        select(ActionId.HOME_CONNECTION, "All connections", queue.connections, queue.connection),
        select(ActionId.HOME_ACTION, "All actions", queue.actions, queue.action)])


def _pager(queue: HomeQueue) -> list[Block]:
    buttons = []
    if queue.page > 0:
        buttons.append(ButtonElement(text="‹ Previous", action_id=PAGE_PREVIOUS, value=queue.previous_state))
    if queue.page < queue.pages - 1:
        buttons.append(ButtonElement(text="Next ›", action_id=PAGE_NEXT, value=queue.next_state))
    return [ActionsBlock(block_id=PAGER_BLOCK_ID, elements=buttons), context(f"Page {queue.page + 1} of {queue.pages}")]


def _pending_blocks(pending: Sequence[Approval], room: int, confirm_over_minor: int | None) -> list[Block]:
    fits = len(pending) if len(pending) * _BLOCKS_PER_PENDING <= room else (room - 1) // _BLOCKS_PER_PENDING
    blocks: list[Block] = []
    for approval in pending[:fits]:
        blocks.append(mrkdwn_section(_pending_text(approval)))
        version = int(approval.get("version") or 0)
        buttons = review_buttons(approval, version=version, confirm_over_minor=confirm_over_minor)
        if approval.get("claimable"):
            buttons.elements.append(ButtonElement(text="I'm on it", action_id=ActionId.CLAIM,
                                                  value=buttons.elements[0].value))
        blocks.append(buttons)
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
    if approval.get("claimedBy"):
        about.append("reviewing: " + " ".join(layout.mention(u) for u in approval["claimedBy"]))
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
    if status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
        text += f" by {layout.actor(approval.get('decidedBy'))}"
    when = layout.slack_date(approval.get("decidedAt"))
    return f"{text} · {when}" if when else text
