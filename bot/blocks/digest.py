"""The digest message: many waiting requests of one group in one message, each with its own
buttons, paginated within Block Kit's 50-block limit, and (for `bulk: true` rules) "Approve all".

Pure: dicts in, blocks out. Decided items leave the list and are counted in the summary line.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject, HeaderBlock
from slack_sdk.models.views import View

from api.approvals.enums import ApprovalStatus
from bot import layout
from bot.blocks.common import (
    Approval,
    context,
    effective_details,
    mrkdwn_section,
    sections_from_lines,
    title,
    to_dicts,
)
from bot.ids import ActionId, ButtonRef, CallbackId, DigestRef, review_actions_block_id

MESSAGE_BLOCK_LIMIT = 50
# 2 blocks an item (its line, its buttons) plus header, summary, bulk, pager and page line: 45.
PAGE_SIZE = 20
BULK_BLOCK_ID = "digest.bulk"
PAGER_BLOCK_ID = "digest.pages"
PAGE_PREVIOUS = f"{ActionId.DIGEST_PAGE}.prev"
PAGE_NEXT = f"{ActionId.DIGEST_PAGE}.next"
_OUTCOME_MARKS = {ApprovalStatus.APPROVED: "✅", ApprovalStatus.REJECTED: "⛔", ApprovalStatus.EXPIRED: "⌛",
                  ApprovalStatus.CANCELLED: "🚫"}


@dataclass(frozen=True)
class DigestItemView:
    approval: Approval  # CONTRACT §3 dict plus `version` (the revision) as render.Snapshot.data has it
    age: str  # "12 min"
    claimed_by: Sequence[str] = ()
    confirm: bool = False  # a large amount: Approve asks first


@dataclass(frozen=True)
class BulkOffer:
    count: int
    total: str  # "$420.00 USD", or "" for actions that move no money


@dataclass(frozen=True)
class DigestView:
    digest_id: str
    generation: int
    heading: str  # "Refunds from support-agent (rule: small duplicate refunds)"
    pending: Sequence[DigestItemView]
    outcomes: Mapping[str, int] = field(default_factory=dict)  # decided items by status
    page: int = 0
    bulk: BulkOffer | None = None


def digest_message(view: DigestView) -> tuple[str, list[dict[str, Any]]]:
    """The digest's text and blocks as they should read now."""
    pages = max(1, -(-len(view.pending) // PAGE_SIZE))
    page = min(view.page, pages - 1)
    shown = view.pending[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    waiting = len(view.pending)
    header = f"📋 {waiting} waiting: {view.heading}" if waiting else f"📋 All decided: {view.heading}"
    blocks: list[Block] = [HeaderBlock(text=layout.truncate(header, 150)), context(_summary(view, waiting))]
    if view.bulk is not None and view.bulk.count and waiting:
        blocks.append(_bulk_button(view))
    for item in shown:
        blocks.append(mrkdwn_section(_item_line(item)))
        blocks.append(_item_buttons(item))
    if pages > 1:
        blocks.append(_pager(view, page, pages))
        blocks.append(context(f"Page {page + 1} of {pages} · oldest first"))
    text = layout.truncate(f"{header} — {waiting} request(s) waiting for review", 500)
    return text, to_dicts(blocks)


def _summary(view: DigestView, waiting: int) -> str:
    decided = [f"{_OUTCOME_MARKS.get(status, '•')} {count} {status}"
               for status, count in sorted(view.outcomes.items()) if count]
    text = "Grouped into one message because many requests are waiting."
    if decided:
        text += " Decided so far: " + " · ".join(decided) + "."
    if not waiting:
        text += " Nothing in this digest is waiting any more."
    return text


def _item_line(item: DigestItemView) -> str:
    approval = item.approval
    details = effective_details(approval)
    parts = [f"*{layout.literal(title(approval, details), 200)}*"]
    customer = details.get("customer_id")
    if customer:
        parts.append(f"customer {layout.literal(customer, 100)}")
    parts.append(f"waiting {item.age}")
    line = " · ".join(parts)
    if approval.get("summary"):
        line += "\n" + layout.literal(approval["summary"], 200)
    if item.claimed_by:
        line += "\n👀 Reviewing: " + " ".join(layout.mention(user) for user in item.claimed_by)
    return line


def _item_buttons(item: DigestItemView) -> ActionsBlock:
    approval = item.approval
    approval_id = approval.get("approvalId", "")
    value = ButtonRef(approval_id=approval_id, version=int(approval.get("version") or 0)).dumps()
    confirm = ConfirmObject(title="Approve a large amount?", text=f"{layout.literal(title(approval), 200)}. "
                            "Check the amount before you approve.", confirm="Approve", deny="Go back")
    return ActionsBlock(block_id=review_actions_block_id(approval_id), elements=[
        ButtonElement(text="Approve", action_id=ActionId.APPROVE, value=value, style="primary",
                      confirm=confirm if item.confirm else None),
        ButtonElement(text="Reject", action_id=ActionId.REJECT, value=value, style="danger"),
        ButtonElement(text="Details", action_id=ActionId.DETAILS, value=value),
        ButtonElement(text="I'm on it", action_id=ActionId.CLAIM, value=value),
    ])


def _bulk_button(view: DigestView) -> ActionsBlock:
    assert view.bulk is not None
    total = f" — {view.bulk.total} total" if view.bulk.total else ""
    ref = DigestRef(digest_id=view.digest_id, generation=view.generation)
    return ActionsBlock(block_id=BULK_BLOCK_ID, elements=[
        ButtonElement(text=layout.truncate(f"Approve all {view.bulk.count}{total}", 75),
                      action_id=ActionId.APPROVE_ALL, value=ref.dumps(), style="primary")])


def _pager(view: DigestView, page: int, pages: int) -> ActionsBlock:
    buttons = []
    if page > 0:
        ref = DigestRef(digest_id=view.digest_id, generation=view.generation, page=page - 1)
        buttons.append(ButtonElement(text="‹ Previous", action_id=PAGE_PREVIOUS, value=ref.dumps()))
    if page < pages - 1:
        ref = DigestRef(digest_id=view.digest_id, generation=view.generation, page=page + 1)
        buttons.append(ButtonElement(text="Next ›", action_id=PAGE_NEXT, value=ref.dumps()))
    return ActionsBlock(block_id=PAGER_BLOCK_ID, elements=buttons)


def bulk_modal(ref: DigestRef, lines: Sequence[str], total: str) -> dict[str, Any]:
    """What "Approve all" covers, listed before anything is decided; submitting approves each."""
    total_text = f" ({total})" if total else ""
    intro = (f"*Approve these {len(lines)} requests{total_text}?* Each is recorded as your own decision, "
             "checked on its own; any that changed or was decided since you looked is left alone.")
    blocks = [mrkdwn_section(intro), *sections_from_lines(lines, max_sections=20)]
    view = View(type="modal", callback_id=CallbackId.BULK_MODAL, title="Approve all",
                submit=layout.truncate(f"Approve {len(lines)}", 24), close="Cancel",
                private_metadata=ref.dumps(), blocks=blocks)
    return view.to_dict()


def bulk_line(approval: Approval, age: str) -> str:
    details = effective_details(approval)
    customer = details.get("customer_id")
    who = f" · customer {layout.literal(customer, 60)}" if customer else ""
    return f"• {layout.literal(title(approval, details), 120)}{who} · waiting {age}"
