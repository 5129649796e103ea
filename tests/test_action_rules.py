"""An action owns its rules: its words, its family, whether it moves money, its Stripe object and
the limits only Stripe knows live on its spec, and the service, policy and Slack ask the spec."""

import re
from pathlib import Path
from typing import Any

import pytest

from api.actions import ACTIONS, ActionSpec, EditableField, EditRejected, ExecutionOutcome
from api.actions.base import money_text
from api.actions.fields import Amount, Currency, Details
from api.execution.gateway import StripeGateway
from api.facts.verify import family_of
from api.policy.reviewing import MONEY_ACTIONS
from api.stripe_webhooks.outcomes import ACTIONS as BY_OBJECT
from api.stripe_webhooks.outcomes import ObjectKind
from bot import layout
from bot.blocks import edit_modal
from bot.ids import field_block_id
from tests.blocks_helpers import approval

ROOT = Path(__file__).resolve().parents[1]
# Velocity totals name refunds and payouts; that module is being rewritten on its own and keeps them.
NOT_YET_MOVED = {ROOT / "api" / "policy" / "usage.py"}


def test_no_module_outside_the_catalogue_names_an_action():
    names = "|".join(map(re.escape, ACTIONS))
    named = re.compile(rf"""["']({names})["']""")
    offenders = []
    for path in [*(ROOT / "api").rglob("*.py"), *(ROOT / "bot").rglob("*.py")]:
        inside = path.relative_to(ROOT).parts
        if inside[:2] == ("api", "actions") or "migrations" in inside or path in NOT_YET_MOVED:
            continue
        offenders += [f"{'/'.join(inside)}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                      if named.search(line)]
    assert not offenders, "action-specific rules outside the action's spec:\n" + "\n".join(offenders)


def test_the_tables_built_from_the_specs_say_what_the_contract_says():
    assert MONEY_ACTIONS == {"issue_refund", "create_payout"}
    assert BY_OBJECT == {ObjectKind.REFUND: ("issue_refund",), ObjectKind.PAYOUT: ("create_payout",),
                         ObjectKind.DISPUTE: ("close_dispute", "submit_dispute_evidence")}
    writes = [name for name, spec in ACTIONS.items() if not spec.read_only]
    assert all(family_of(name) is not None for name in writes)
    assert all(family_of(name) is None for name, spec in ACTIONS.items() if spec.read_only)
    assert layout.headline("issue_refund", {"amount_cents": 34900, "currency": "usd"}) == "Refund $349.00 USD"
    assert layout.headline("issue_refund", {"charge_id": "ch_1"}) == "Full refund"
    assert layout.headline("create_payout", {"amount_cents": 5000, "currency": "jpy", "method": "instant"}) == \
        "Payout ¥5,000 JPY (instant)"
    assert layout.headline("retrieve_balance", {}) == "Retrieve balance"
    assert layout.headline("not_in_the_catalogue", {}) == "Not in the catalogue"


class CreditDetails(Details):
    amount_cents: Amount
    currency: Currency


class IssueCredit(ActionSpec):
    """An action this code has never seen, of the refund family: everything it needs is here."""

    name = "issue_credit"
    title = "Issue credit"
    plural = "Credits"
    moves_money = True
    family = "refund"
    details_model = CreditDetails
    editable = (EditableField("amount_cents", "Credit amount", "amount"),)

    def headline(self, details: dict[str, Any]) -> str:
        return f"Credit {money_text(details.get('amount_cents'), details.get('currency'))}"

    async def check_edits(self, gateway: StripeGateway, details: dict[str, Any], edits: dict[str, Any]) -> None:
        if edits.get("amount_cents", 0) > 500:
            raise EditRejected("amount_cents", "credits stop at $5.00")

    async def run(self, gateway: StripeGateway, details: Any, idempotency_key: str) -> ExecutionOutcome:
        return ExecutionOutcome("cr_1", {})


async def test_a_new_action_is_one_spec_that_slack_lays_out_by_its_family(monkeypatch):
    monkeypatch.setitem(ACTIONS, "issue_credit", IssueCredit())
    details = {"amount_cents": 400, "currency": "usd"}
    assert layout.headline("issue_credit", details) == "Credit $4.00 USD"
    assert layout.detail_lines("issue_credit", details, test_mode=True) == ["*Amount:* $4.00 USD"]
    assert family_of("issue_credit") is not None  # Stripe's refund facts are read for it
    assert ACTIONS["issue_credit"].group_words() == "Credits"
    with pytest.raises(EditRejected, match="credits stop"):
        await ACTIONS["issue_credit"].check_edits(StripeGateway(None, "http://unused.invalid"), details,
                                                   {"amount_cents": 600})


def test_the_edit_modal_says_what_an_empty_amount_means_only_where_the_action_allows_one():
    whole = approval(details={"charge_id": "ch_3NxYzAbCdEfGhIjK", "currency": "usd"})
    view = edit_modal(whole, 1, ACTIONS["issue_refund"].editable)
    amount = next(b for b in view["blocks"] if b.get("block_id") == field_block_id("amount_cents"))
    assert amount["element"]["placeholder"]["text"] == "Leave empty for a full refund"

    credit = IssueCredit()  # its amount is required: no promise about leaving it empty
    view = edit_modal(approval(action="issue_credit", details={"currency": "usd"}), 1, credit.editable)
    amount = next(b for b in view["blocks"] if b.get("block_id") == field_block_id("amount_cents"))
    assert "placeholder" not in amount["element"]
