"""Shared by the policy engine tests: a request to ask about, and the CONTRACT §6 example policy."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.policy import (
    PolicyInput,
    load_policy,
)

POLICIES = Path(__file__).parent / "policies"
MONDAY_NOON_UTC = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


def ask(action: str, now: datetime = MONDAY_NOON_UTC, **details: object) -> PolicyInput:
    return PolicyInput(action=action, details=details, now=now,
                       request={"riskLevel": "medium", "priority": "normal", "agentName": "bot"},
                       connection={"id": "con_1", "name": "support agent"})


@pytest.fixture
def contract_policy():
    return load_policy(POLICIES / "contract_example.yaml")
