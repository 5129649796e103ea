"""The cheaper encodings intake uses give exactly what the slower ones gave.

Ids, the audit chain's canonical JSON, the Idempotency-Key fingerprint and response bodies were
each made cheaper (an encoder built once, a table look-up instead of a division per character);
stored ids, hashes and fingerprints must not change with them.
"""

import hashlib
import json
import random
import re
from datetime import UTC, datetime

import pytest

from api import ids
from api.approvals.schemas import ApprovalCreate
from api.audit import chain
from api.policy import PolicyInput, default_policy, parse_policy
from api.strict_input import dumps

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def reference_encode(value: int, length: int) -> str:
    """The ULID encoding as ids were first made: one division by 32 per character."""
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(ALPHABET[index])
    return "".join(reversed(chars))


def test_id_encoding_matches_the_division_per_character():
    rng = random.Random(14)
    cases = [(0, 0), (2**48 - 1, 2**80 - 1), (1, 1), (2**48 - 1, 0), (0, 2**80 - 1)]
    cases += [(rng.getrandbits(48), rng.getrandbits(80)) for _ in range(5000)]
    for millis, randomness in cases:
        assert ids._encode_id(millis, randomness) == reference_encode(millis, 10) + reference_encode(randomness, 16)


def test_new_ids_keep_their_layout_and_order():
    made = [ids.new_id("apr") for _ in range(2000)]
    assert all(re.fullmatch(r"apr_[0-9a-hjkmnp-tv-z]{26}", made_id) for made_id in made)
    assert made == sorted(made) and len(set(made)) == len(made)
    for made_id in made[:5]:
        millis = sum(ALPHABET.index(c) * 32 ** i for i, c in enumerate(reversed(made_id[4:14])))
        assert abs(millis / 1000 - datetime.now(UTC).timestamp()) < 60  # the time part is the time


VALUES = [
    {"b": 1, "a": [1, 2.5, None, True], "é": "naïve ✓", "nested": {"z": {}, "y": [], "x": "\u2028"}},
    {"status": "pending", "execution": "not_requested", "modifiedDetails": None},
    {"big": 10**30, "neg": -0.0, "small": 1e-300, "quote": "\"\\/"},
    "text", 3, None, [],
]


@pytest.mark.parametrize("value", VALUES)
def test_canonical_json_is_the_text_hashes_were_made_of(value):
    assert chain.canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("value", VALUES)
def test_response_json_is_unchanged(value):
    assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def test_response_json_still_turns_non_finite_numbers_into_null():
    assert dumps({"a": float("nan"), "b": [float("inf"), 1.5]}) == '{"a":null,"b":[null,1.5]}'


def test_an_entry_hash_is_unchanged():
    row = {"id": "evt_1", "seq": 7, "at": NOW, "event": "approval.created", "approval_id": "apr_1",
           "connection_id": "con_1", "actor": {"type": "connection", "id": "con_1", "name": "bé"},
           "before": None, "after": {"status": "pending"}, "detail": {"request": {"amount": 1}},
           "prev_hash": "0" * 64}
    fields = {"id": "evt_1", "seq": 7, "at": "2026-03-02T12:00:00.000000+00:00", "event": "approval.created",
              "approvalId": "apr_1", "connectionId": "con_1", "actor": row["actor"], "before": None,
              "after": row["after"], "detail": row["detail"], "prevHash": "0" * 64}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert chain.row_hash(row) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_fingerprint_an_idempotency_key_binds_to_is_unchanged():
    body = ApprovalCreate.model_validate({
        "action": "issue_refund", "summary": "Refund ✓", "details": {"charge_id": "ch_1", "amount_cents": 100},
        "metadata": {"b": "1", "a": "é"}, "timeoutMs": 5000})
    dumped = body.model_dump(mode="json", exclude={"timeout_ms"}, exclude_none=True)
    expected = hashlib.sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert body.fingerprint() == expected


def test_a_policy_without_conditions_does_not_build_the_condition_variables(monkeypatch):
    def refuse(_self):
        raise AssertionError("variables built for a policy that has no condition to read them")

    monkeypatch.setattr(PolicyInput, "variables", refuse)
    decision = default_policy(["UREVIEWER"]).evaluate(PolicyInput(action="issue_refund", details={}, now=NOW))
    assert decision.decision == "review"


def test_conditions_still_read_the_variables_once_a_rule_needs_them():
    policy = parse_policy(b"""\
rules:
  - name: lookups
    actions: [retrieve_charge]
    decision: pass
  - name: whole refunds reviewed
    actions: [issue_refund]
    when: details.amount_cents > 5000
    decision: review
  - name: small
    actions: [issue_refund]
    when: details.amount_cents <= 2000
    decision: approve
""", default_approvers=["UREVIEWER"])
    small = policy.evaluate(PolicyInput(action="issue_refund", details={"amount_cents": 100}, now=NOW))
    assert (small.decision, small.rule) == ("approve", "small")
    # No amount: the first condition fails, so the later approval must not stand.
    whole = policy.evaluate(PolicyInput(action="issue_refund", details={"charge_id": "ch_1"}, now=NOW))
    assert (whole.decision, whole.rule) == ("review", None)
    assert whole.errors and "whole refunds reviewed" in whole.errors[0]


def test_a_naive_time_is_still_refused_whatever_the_rules():
    with pytest.raises(ValueError, match="timezone-aware"):
        default_policy(["UREVIEWER"]).evaluate(PolicyInput(action="issue_refund", details={}, now=datetime(2026, 3, 2)))


@pytest.mark.parametrize("document", [
    {"action": "issue_refund", "summary": "s", "details": {"charge_id": "ch_1"}},
    {"action": "issue_refund", "summary": "Refund ✓", "details": {"charge_id": "ch_1", "nested": {"a": [1]}},
     "justification": "j", "callbackUrl": "https://example.com/cb", "timeoutMs": 0, "execute": False,
     "riskLevel": "high", "priority": "urgent", "agentName": "bot", "metadata": {"b": "1"},
     "expiresAt": "2026-03-02T12:00:00.123456+02:00"},
])
def test_one_dump_gives_the_fingerprint_and_the_request_the_audit_trail_records(document):
    body = ApprovalCreate.model_validate(document)
    fingerprint, record = body.fingerprint_and_record()
    assert record == body.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert list(record) == list(body.model_dump(mode="json", by_alias=True, exclude_none=True))
    dumped = body.model_dump(mode="json", exclude={"timeout_ms"}, exclude_none=True)
    assert fingerprint == hashlib.sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert fingerprint == body.fingerprint()
