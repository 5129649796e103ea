"""Hold deadlines (api/approvals/waiters.py `Deadlines`): every hold shares one loop timer, ordered by
deadline, instead of a timer each. Through the wire: holds of different lengths, opened longest
first, each answer `pending` once their own `waitMs` has passed, not before; a hold decided early
answers at once and the entry it leaves behind wakes nobody else early; holds opened after the
others have gone still time out."""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import REFUND
from tests.live import Live, start_live

# Long enough apart that the order is not the machine's scheduling, short enough for a quick test.
WAITS_MS = (2400, 1600, 800)
# A hold that never timed out would hang the test; give up well after the longest wait.
GIVE_UP = 30


@pytest.fixture
def live(make_settings: Callable[..., Any]) -> Iterator[Live]:
    yield from start_live(make_settings(limit_holds=0, limit_pending=0, limit_requests_per_minute=0))


def _hold(live: Live, approval_id: str, wait_ms: int, answers: dict[str, tuple[float, httpx.Response]],
          name: str) -> threading.Thread:
    def run() -> None:
        began = time.monotonic()
        response = httpx.get(f"{live.url}/v1/approvals/{approval_id}?waitMs={wait_ms}",
                             headers={"Authorization": f"Bearer {live.key}"}, timeout=GIVE_UP)
        answers[name] = time.monotonic() - began, response

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_holds_time_out_each_at_its_own_wait_and_a_decided_one_at_once(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    with httpx.Client(base_url=live.url, headers=headers, timeout=30) as http:
        ids = [http.post("/v1/approvals", json=REFUND).json()["approvalId"] for _ in range(len(WAITS_MS) + 1)]
    answers: dict[str, tuple[float, httpx.Response]] = {}

    def registered(count: int) -> None:
        deadline = time.monotonic() + 10
        while live.container.waiters.held < count:
            assert time.monotonic() < deadline, "the hold did not start"
            time.sleep(0.01)

    # Longest first, one after the other: each new deadline is earlier than the shared timer's, which
    # must therefore be moved forward each time.
    decided = _hold(live, ids[-1], 20_000, answers, "decided")
    registered(1)
    threads = []
    for approval_id, wait_ms in zip(ids, WAITS_MS, strict=False):
        threads.append(_hold(live, approval_id, wait_ms, answers, f"wait{wait_ms}"))
        registered(len(threads) + 1)
    live.decide(ids[-1], "reject", note="no")
    decided.join(timeout=GIVE_UP)
    for thread in threads:
        thread.join(timeout=GIVE_UP)

    seconds, response = answers["decided"]
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert seconds < 20  # released by the decision, not by its 20 s deadline
    for approval_id, wait_ms in zip(ids, WAITS_MS, strict=False):
        seconds, response = answers[f"wait{wait_ms}"]
        assert response.status_code == 200, response.text
        assert response.json()["approvalId"] == approval_id and response.json()["status"] == "pending"
        assert seconds >= wait_ms / 1000, (wait_ms, seconds)  # not woken early by another hold's deadline
    # Each at its own deadline: a shorter hold does not wait for a longer one's (the shared timer moved).
    for shorter, longer in zip(sorted(WAITS_MS), sorted(WAITS_MS)[1:], strict=False):
        assert answers[f"wait{shorter}"][0] < longer / 1000, (shorter, answers[f"wait{shorter}"][0])

    # Holds opened after all of those have gone (stale entries included) still time out.
    later: dict[str, tuple[float, httpx.Response]] = {}
    again = [_hold(live, approval_id, 300, later, approval_id) for approval_id in ids[:2]]
    for thread in again:
        thread.join(timeout=GIVE_UP)
    assert sorted(later) == sorted(ids[:2])
    for seconds, response in later.values():
        assert response.json()["status"] == "pending"
        assert 0.3 <= seconds < 20  # its own deadline, not the decided hold's stale 20 s entry
