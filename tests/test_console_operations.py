"""The console's operator tools and faults: redelivering a callback, and deciding while Slack is down."""

from collections.abc import Callable
from typing import Any

from tests.conftest import REFUND
from tests.console_helpers import VIEWER, console_harness, hidden_fields
from tests.fakes.receiver import CallbackReceiver
from tests.fakes.server import serve
from tests.slack_helpers import APPROVER, has_buttons
from tests.test_console_decide import decide, posted_message


async def test_an_approver_redelivers_a_callback_a_viewer_may_not(make_settings: Callable[..., Any],
                                                                  clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        receiver = CallbackReceiver(h.secret)
        with serve(receiver.app) as hook:
            apr = (await h.request({**REFUND, "execute": False, "callbackUrl": f"{hook}/hooks"}))["approvalId"]
            await h.sign_in(APPROVER)
            assert (await decide(h, apr, verdict="approve")).status_code == 303
            await h.settle()
            assert len(receiver.events) == 1
            page = await h.http.get(f"/console/requests/{apr}")
            assert "approval.approved" in page.text and "delivered" in page.text and "#1" in page.text
            delivery = receiver.events[0].webhook_id
            again = await h.http.post(f"/console/callbacks/{delivery}/redeliver",
                                      data={"csrf": hidden_fields(page.text)["csrf"]})
            assert again.status_code == 303 and again.headers["location"].endswith("notice=redelivered")
            pending = await h.http.post(f"/console/callbacks/{delivery}/redeliver",
                                        data={"csrf": hidden_fields(page.text)["csrf"]})
            assert pending.status_code == 409 and "still being delivered" in pending.text
            await h.settle()
            assert [e.webhook_id for e in receiver.events] == [delivery, delivery]

            h.http.cookies.clear()
            await h.sign_in(VIEWER)
            page = await h.http.get(f"/console/requests/{apr}")
            assert "Redeliver" not in page.text
            refused = await h.http.post(f"/console/callbacks/{delivery}/redeliver",
                                        data={"csrf": hidden_fields(page.text)["csrf"]})
            assert refused.status_code == 403
            await h.settle()
            assert len(receiver.events) == 2


async def test_deciding_while_slack_is_down_is_recorded_and_the_message_catches_up(
        make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        apr = (await h.request({**REFUND, "execute": False}))["approvalId"]
        await h.settle()
        await h.sign_in(APPROVER)
        h.fake.fail_next("chat.update", status=503)  # Slack is down when the message is to be updated
        assert (await decide(h, apr, verdict="approve")).status_code == 303
        assert (await h.approval(apr))["status"] == "approved"
        await h.settle()
        assert has_buttons(await posted_message(h, apr))  # Slack is still down: the old message stands
        clock.advance(hours=1)  # Slack is back, and the outbox's back-off has passed
        await h.settle()
        assert not has_buttons(await posted_message(h, apr))
