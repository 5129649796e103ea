"""The policy page: the running policy, whether its file still checks, and a replay of the file."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import REFUND
from tests.console_helpers import VIEWER, console_harness
from tests.slack_helpers import STRANGER

REVIEW_ALL = "defaults:\n  approvers: [UAPPROVER]\nrules:\n  - name: refunds reviewed\n    actions: [issue_refund]\n" \
             "    decision: review\n"
APPROVE_SMALL = REVIEW_ALL.replace("refunds reviewed", "small refunds approved").replace(
    "decision: review", "when: details.amount_cents < 50000\n    decision: approve")


async def test_the_policy_page_checks_the_file_and_replays_it(make_settings: Callable[..., Any], clock: Any,
                                                              tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(REVIEW_ALL)
    async with console_harness(make_settings, clock, policy_file=policy) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.sign_in(VIEWER)
        page = await h.http.get("/console/policy")
        assert page.status_code == 200 and "refunds reviewed" in page.text and "The file checks." in page.text

        policy.write_text(APPROVE_SMALL)  # edited on disk, not yet running
        replay = await h.http.get("/console/policy", params={"replay_days": "7"})
        assert replay.status_code == 200 and "changed since the service started" in replay.text
        assert "1 request(s) replayed" in replay.text and apr in replay.text  # review → approve
        assert "small refunds approved" in replay.text

        policy.write_text("rules:\n  - name: broken\n    decision: maybe\n")
        broken = await h.http.get("/console/policy")
        assert "no longer checks" in broken.text and "refunds reviewed" in broken.text  # still the running one
        assert (await h.http.get("/console/policy", params={"replay_days": "1000"})).status_code == 422
        assert (await h.http.get("/console/policy", params={"replay_days": "-1"})).status_code == 422


async def test_people_who_may_not_read_get_no_policy(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        assert (await h.http.get("/console/policy")).status_code == 401
        await h.sign_in(STRANGER)
        assert (await h.http.get("/console/policy")).status_code == 401  # refused at sign-in: no session
