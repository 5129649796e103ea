"""The action catalogue of CONTRACT §5.

    from api.actions import get_action, ACTIONS
    spec = get_action("issue_refund")           # ActionSpec | None
    spec.validate_details(details)              # → normalised dict, or ValidationFailed
    spec.apply_edits(details, {"amount_cents": 17450})   # → (modified_details, changes)
    await spec.execute(gateway, details, idempotency_key=key)   # → ExecutionOutcome
"""

from api.actions.base import ActionSpec, EditableField, EditKind, EditRejected, ExecutionOutcome
from api.actions.disputes import CloseDispute, SubmitDisputeEvidence
from api.actions.payouts import CreatePayout
from api.actions.reads import (
    ListRefunds,
    RetrieveBalance,
    RetrieveCharge,
    RetrieveDispute,
    RetrieveSubscription,
)
from api.actions.refunds import IssueRefund
from api.actions.subscriptions import CancelSubscription, UpdateSubscription

ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        IssueRefund(), CreatePayout(), CancelSubscription(), UpdateSubscription(),
        CloseDispute(), SubmitDisputeEvidence(),
        RetrieveBalance(), RetrieveCharge(), ListRefunds(), RetrieveSubscription(), RetrieveDispute(),
    )
}


def get_action(name: str) -> ActionSpec | None:
    """The catalogue entry for `name`, or None for an action outside it (allowed only with
    `execute: false`)."""
    return ACTIONS.get(name)


__all__ = ["ACTIONS", "ActionSpec", "EditKind", "EditRejected", "EditableField", "ExecutionOutcome",
           "get_action"]
