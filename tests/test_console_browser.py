"""The console in a real headless browser (Debian's chromium, driven by Playwright): sign in through
the fake Slack's OpenID endpoints, edit and approve a refund while the agent holds, and the
refusals a person can meet: a viewer deciding, a forged form, a stale page."""

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REFUND
from tests.console_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, ensure_chromium, free_port, serve_on
from tests.console_helpers import PEOPLE, VIEWER, console_values, fakes
from tests.fakes.slack import FakeSlack
from tests.live import Live
from tests.slack_helpers import APPROVER, GROUP_MEMBER, has_buttons, review_message

sync_api = pytest.importorskip("playwright.sync_api", reason="the test extra's playwright is not installed")

LARGE_REFUND = {**REFUND, "execute": False, "details": {**REFUND["details"], "amount_cents": 90000}}


class Served:
    def __init__(self, live: Live, fake: FakeSlack) -> None:
        self.live, self.fake, self.url = live, fake, live.url

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/v1/approvals", json=body, timeout=70,
                            headers={"Authorization": f"Bearer {self.live.key}"})
        assert answer.status_code in (200, 202), answer.text
        return answer.json()

    def message(self, approval_id: str) -> dict[str, Any] | None:
        found = self.live.run(review_message(self.live.container.db, approval_id))
        return self.fake.message(*found) if found else None


@pytest.fixture
def served(make_settings: Callable[..., Any], tmp_path: Path) -> Iterator[Served]:
    ensure_chromium()
    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  approvers: [UAPPROVER, S0FINANCE]\n"
                      "rules:\n  - name: two for large refunds\n    actions: [issue_refund]\n"
                      "    when: details.amount_cents > 50000\n    decision: review\n    required_approvals: 2\n")
    fake, openid = fakes()
    port = free_port()
    with openid.serving(fake) as slack_url:
        live = Live(make_settings(**console_values(slack_url, f"http://127.0.0.1:{port}"), policy_file=policy,
                                  worker_poll_seconds=0.05))
        with serve_on(live.app, port) as url:
            live.url = url
            live.connection_id, live.key, live.secret = live.new_connection()
            yield Served(live, fake)


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def signed_in(browser: Any, served: Served, user: str, path: str = "/console") -> Any:
    """A browser page of a person who signed in with Slack (the fake's authorize page), at `path`."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(served.url + path)
    page.get_by_role("link", name="Sign in with Slack").click()
    page.get_by_role("button", name=f"Continue as {PEOPLE[user]}").click()
    page.wait_for_url(served.url + path)
    return page


def eventually(check: Callable[[], Any], seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError("timed out")


def shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def test_edit_and_approve_in_the_browser_releases_the_agent_and_updates_slack(served: Served,
                                                                               browser: Any) -> None:
    held: dict[str, Any] = {}
    agent = threading.Thread(target=lambda: held.update(served.request({**REFUND, "execute": False,
                                                                        "timeoutMs": 30000})), daemon=True)
    agent.start()
    approval_id = eventually(lambda: next(iter(served.live.pending_ids()), None))
    eventually(lambda: served.message(approval_id))  # the review message is in Slack

    page = signed_in(browser, served, APPROVER)
    page.get_by_role("link", name=REFUND["summary"]).wait_for()
    shot(page, "console-queue.png")
    page.get_by_role("link", name=REFUND["summary"]).click()
    page.get_by_role("heading", name="Decide revision 1").wait_for()
    shot(page, "console-request.png")
    page.fill('input[name="edit.amount_cents"]', "174.50")
    page.get_by_role("button", name="Edit and approve").click()
    page.get_by_role("status").filter(has_text="Approved.").wait_for()

    agent.join(timeout=30)
    assert held["status"] == "approved" and held["modifiedDetails"]["amount_cents"] == 17450
    assert held["decidedBy"]["id"] == APPROVER and held["changes"]["amount_cents"]["to"] == 17450
    message = eventually(lambda: (m := served.message(approval_id)) and not has_buttons(m) and m)
    assert "174.50" in str(message["blocks"])


def test_a_viewer_sees_no_decisions_and_a_forged_post_is_refused(served: Served, browser: Any) -> None:
    approval_id = served.request({**REFUND, "execute": False})["approvalId"]
    page = signed_in(browser, served, VIEWER, f"/console/requests/{approval_id}")
    assert page.get_by_role("heading", name=REFUND["summary"]).is_visible()
    assert page.get_by_role("button", name="Approve").count() == 0
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    answer = page.request.post(f"{served.url}/console/requests/{approval_id}/decide",
                               form={"csrf": token, "revision": "1", "verdict": "approve"})
    assert answer.status == 403
    assert served.live.approval(approval_id).status == "pending"


def test_a_form_with_a_forged_csrf_token_changes_nothing(served: Served, browser: Any) -> None:
    approval_id = served.request({**REFUND, "execute": False})["approvalId"]
    page = signed_in(browser, served, APPROVER, f"/console/requests/{approval_id}")
    page.locator('form.inline input[name="csrf"]').first.evaluate("input => { input.value = 'forged' }")
    page.get_by_role("button", name="Approve", exact=True).click()
    page.get_by_role("alert").filter(has_text="security token").wait_for()
    assert served.live.approval(approval_id).status == "pending"


def test_a_stale_page_is_refused_and_shows_the_current_revision(served: Served, browser: Any) -> None:
    approval_id = served.request(LARGE_REFUND)["approvalId"]  # two approvals needed
    first = signed_in(browser, served, APPROVER, f"/console/requests/{approval_id}")
    second = signed_in(browser, served, GROUP_MEMBER, f"/console/requests/{approval_id}")
    second.fill('input[name="edit.amount_cents"]', "450.00")
    second.get_by_role("button", name="Edit and approve").click()
    second.get_by_role("status").filter(has_text="more approvals").wait_for()

    first.get_by_role("button", name="Approve", exact=True).click()  # on revision 1, as the page shows
    first.get_by_role("alert").filter(has_text="now revision 2").wait_for()
    assert first.get_by_role("heading", name="Decide revision 2").is_visible()
    row = served.live.approval(approval_id)
    assert row.status == "pending" and row.revision == 2
    first.get_by_role("button", name="Approve", exact=True).click()
    first.get_by_role("status").filter(has_text="Approved.").wait_for()
    assert served.live.approval(approval_id).modified_details["amount_cents"] == 45000
