"""Which Stripe events move an execution on: only forward, and between equals only the newer one."""

from datetime import UTC, datetime, timedelta

import pytest

from api.stripe_webhooks.outcomes import MalformedEvent, ObjectKind, is_news, later_outcome, parse_event

T = datetime(2026, 11, 1, tzinfo=UTC)
REFUND, PAYOUT, DISPUTE = ObjectKind.REFUND, ObjectKind.PAYOUT, ObjectKind.DISPUTE


@pytest.mark.parametrize(("kind", "held", "new", "created", "last", "news"), [
    (REFUND, "succeeded", "failed", T, None, True),
    (REFUND, "pending", "succeeded", T, None, True),
    (REFUND, "failed", "succeeded", T, None, False),             # never backwards
    (REFUND, "failed", "pending", T + timedelta(days=1), T, False),  # not even when newer
    (REFUND, "failed", "failed", T, None, False),                # the same news again
    (REFUND, "failed", "canceled", T + timedelta(seconds=1), T, True),   # same rank, newer
    (REFUND, "failed", "canceled", T - timedelta(seconds=1), T, False),  # same rank, older
    (REFUND, "succeeded", "mystery", T, None, False),            # a status we cannot place
    (PAYOUT, "pending", "paid", T, None, True),
    (PAYOUT, "paid", "failed", T, T, True),                      # a payout can fail after it was paid
    (PAYOUT, "failed", "paid", T + timedelta(days=1), T, False),
    (DISPUTE, "under_review", "won", T, None, True),
    (DISPUTE, "lost", "lost", T, None, False),
])
def test_is_news(kind, held, new, created, last, news):
    assert is_news(kind, held, new, created, last) is news


def test_a_refund_failure_names_stripes_reason():
    outcome = later_outcome(REFUND, {"id": "re_1", "status": "failed", "failure_reason": "lost_or_stolen_card"})
    assert outcome.status == "failed"
    assert outcome.error == {"type": "refund_failed", "code": "lost_or_stolen_card",
                             "message": "Stripe reports the refund failed after it was created: lost or stolen card"}


def test_a_paid_payout_stays_succeeded():
    outcome = later_outcome(PAYOUT, {"id": "po_1", "status": "paid"})
    assert (outcome.status, outcome.error, outcome.result["status"]) == ("succeeded", None, "paid")


@pytest.mark.parametrize("body", [
    [], {"object": "charge"}, {"object": "event", "id": "", "type": "x", "created": 1, "data": {"object": {}}},
    {"object": "event", "id": "evt_1", "type": "refund.failed", "created": "yesterday", "data": {"object": {}}},
    {"object": "event", "id": "evt_1", "type": "refund.failed", "created": True, "data": {"object": {}}},
    {"object": "event", "id": "evt_1", "type": "refund.failed", "created": 1, "data": {"object": "re_1"}},
    {"object": "event", "id": "evt_1", "type": "refund.failed", "created": 10**15, "data": {"object": {}}},
])
def test_what_is_not_a_readable_event_is_refused(body):
    with pytest.raises(MalformedEvent):
        parse_event(body)
