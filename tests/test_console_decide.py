"""Deciding in the console, over the real wire: forms with CSRF tokens, the core's checks, Slack updated."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from api.audit.models import AuditEvent
from tests.conftest import REFUND
from tests.console_helpers import VIEWER, ConsoleHarness, console_harness
from tests.slack_helpers import APPROVER, GROUP_MEMBER, PAYOUT, has_buttons, review_message


async def posted_message(h: ConsoleHarness, approval_id: str) -> dict[str, Any]:
    found = await review_message(h.container.db, approval_id)
    assert found is not None, "the review message was not posted"
    return h.fake.message(*found)


async def audit(h: ConsoleHarness, event: str) -> list[AuditEvent]:
    async with h.container.db.read() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.event == event))).all())


async def decide(h: ConsoleHarness, approval_id: str, **fields: str) -> Any:
    _, hidden = await h.page(f"/console/requests/{approval_id}")
    form = {"csrf": hidden.get("csrf", ""), "revision": hidden.get("revision", ""), **fields}
    return await h.http.post(f"/console/requests/{approval_id}/decide", data=form)


async def test_approve_updates_the_slack_message_and_names_the_person(make_settings: Callable[..., Any],
                                                                      clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.settle()
        assert has_buttons(await posted_message(h, apr))
        await h.sign_in(APPROVER)
        page = await h.http.get(f"/console/requests/{apr}")
        assert "Edit and approve" in page.text and "Customer provided proof" in page.text
        answer = await decide(h, apr, verdict="approve", note="ok")
        assert answer.status_code == 303 and answer.headers["location"].endswith("notice=approved")
        data = await h.approval(apr)
        assert data["status"] == "approved" and data["decidedBy"]["id"] == APPROVER
        await h.settle()
        assert not has_buttons(await posted_message(h, apr))  # the message is final in Slack too
        shown = await h.http.get(answer.headers["location"])
        assert "Approved." in shown.text and "approval.approved" in shown.text  # the audit timeline


async def test_edit_and_approve_reads_major_units_like_the_modal(make_settings: Callable[..., Any],
                                                                 clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.sign_in(APPROVER)
        bad = await decide(h, apr, verdict="edit", **{"edit.amount_cents": "174.505"})
        assert bad.status_code == 422 and "at most 2 decimal places" in bad.text
        assert (await h.approval(apr))["status"] == "pending"
        good = await decide(h, apr, verdict="edit", note="half", **{"edit.amount_cents": "$174.50",
                                                                    "edit.reason": "duplicate"})
        assert good.status_code == 303
        data = await h.approval(apr)
        assert data["status"] == "approved" and data["modifiedDetails"]["amount_cents"] == 17450
        assert data["changes"] == {"amount_cents": {"from": 34900, "to": 17450}}


async def test_a_payout_cannot_be_raised(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request(PAYOUT))["approvalId"]
        await h.sign_in(APPROVER)
        raised = await decide(h, apr, verdict="edit", **{"edit.amount_cents": "600"})
        assert raised.status_code == 422 and "can only be lowered" in raised.text
        assert (await h.approval(apr))["status"] == "pending"


async def test_reject_needs_a_note(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.sign_in(APPROVER)
        assert (await decide(h, apr, verdict="reject", note="  ")).status_code == 422
        assert (await h.approval(apr))["status"] == "pending"
        assert (await decide(h, apr, verdict="reject", note="Not a duplicate")).status_code == 303
        data = await h.approval(apr)
        assert data["status"] == "rejected" and data["decisionNote"] == "Not a duplicate"


async def test_a_form_without_the_right_csrf_token_changes_nothing(make_settings: Callable[..., Any],
                                                                  clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.sign_in(APPROVER)
        for token in (None, "", "forged-token"):
            form = {"revision": "1", "verdict": "approve", **({"csrf": token} if token is not None else {})}
            answer = await h.http.post(f"/console/requests/{apr}/decide", data=form)
            assert answer.status_code == 403 and "security token" in answer.text
        assert (await h.approval(apr))["status"] == "pending"


async def test_a_form_without_a_session_changes_nothing(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.sign_in(APPROVER)
        _, hidden = await h.page(f"/console/requests/{apr}")
        h.http.cookies.clear()
        answer = await h.http.post(f"/console/requests/{apr}/decide",
                                   data={"csrf": hidden["csrf"], "revision": "1", "verdict": "approve"})
        assert answer.status_code == 403 and "location" not in answer.headers
        assert (await h.approval(apr))["status"] == "pending"


async def test_a_viewer_may_read_but_not_decide(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.sign_in(VIEWER)
        page, hidden = await h.page(f"/console/requests/{apr}")
        assert page.status_code == 200 and "Edit and approve" not in page.text
        answer = await h.http.post(f"/console/requests/{apr}/decide",
                                   data={"csrf": hidden["csrf"], "revision": "1", "verdict": "approve"})
        assert answer.status_code == 403 and "not decide" in answer.text
        assert (await h.approval(apr))["status"] == "pending"
        refused = await audit(h, "decision.refused")
        assert [(e.actor or {}).get("id") for e in refused] == [VIEWER]


async def test_a_stale_revision_is_refused_and_the_current_one_shown(make_settings: Callable[..., Any], clock: Any,
                                                                     tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  approvers: [UAPPROVER, S0FINANCE]\n  required_approvals: 2\n")
    async with console_harness(make_settings, clock, policy_file=policy) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.sign_in(APPROVER)
        _, seen = await h.page(f"/console/requests/{apr}")  # the page as it was: revision 1
        h.http.cookies.clear()
        await h.sign_in(GROUP_MEMBER)
        assert (await decide(h, apr, verdict="edit", **{"edit.amount_cents": "100.00"})).status_code == 303
        h.http.cookies.clear()
        await h.sign_in(APPROVER)
        _, fresh = await h.page(f"/console/requests/{apr}")
        stale = await h.http.post(f"/console/requests/{apr}/decide",
                                  data={"csrf": fresh["csrf"], "revision": seen["revision"], "verdict": "approve"})
        assert stale.status_code == 409 and "revision 2" in stale.text and "$100.00" in stale.text
        data = await h.approval(apr)
        assert data["status"] == "pending" and data["revision"] == 2 and len(data["approvals"]) == 1
        assert any((e.detail or {}).get("reason") == "stale revision" for e in await audit(h, "decision.refused"))
        assert (await decide(h, apr, verdict="approve")).status_code == 303  # on the revision now shown
        assert (await h.approval(apr))["status"] == "approved"


async def test_unknown_or_malformed_request_ids_are_not_found(make_settings: Callable[..., Any],
                                                              clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        await h.sign_in(APPROVER)
        for path in ("apr_doesnotexist", "..%2F..%2Fetc", "apr_%3Cscript%3E"):
            assert (await h.http.get(f"/console/requests/{path}")).status_code == 404
        _, hidden = await h.page("/console")
        answer = await h.http.post("/console/requests/apr_doesnotexist/decide",
                                   data={"csrf": hidden["csrf"], "revision": "1", "verdict": "approve"})
        assert answer.status_code == 404


async def test_a_body_that_is_not_a_form_changes_nothing(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.sign_in(APPROVER)
        _, hidden = await h.page(f"/console/requests/{apr}")
        fields = {"csrf": hidden["csrf"], "revision": "1", "verdict": "approve"}
        as_json = await h.http.post(f"/console/requests/{apr}/decide", json=fields)
        as_multipart = await h.http.post(f"/console/requests/{apr}/decide", data=fields, files={"f": b"x"})
        not_utf8 = await h.http.post(f"/console/requests/{apr}/decide", content=b"csrf=\xff\xfe",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        for answer in (as_json, as_multipart, not_utf8):
            assert answer.status_code == 400 and "could not be read" in answer.text
        assert (await h.approval(apr))["status"] == "pending"


async def test_the_request_page_links_to_its_slack_message_once_posted(make_settings: Callable[..., Any],
                                                                       clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.settle()
        channel, ts = await review_message(h.container.db, apr)
        await h.sign_in(APPROVER)
        page = await h.http.get(f"/console/requests/{apr}")
        link = f'<a href="https://slack.com/archives/{channel}/p{ts.replace(".", "")}" rel="noopener">'
        assert link in page.text and ">its message in Slack</a>" in page.text
