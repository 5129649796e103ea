"""The Block Kit builders for App Home, reminders and alerts."""


import pytest

from bot.blocks import (
    alert_text,
    app_home,
    reminder_text,
)
from bot.ids import ButtonRef
from tests.blocks_helpers import approval, buttons, decided, texts

# -- App Home, reminders, alerts ----------------------------------------------------------------------


def test_app_home_fits_in_100_blocks_and_says_how_many_more():
    pending = [approval(approvalId=f"apr_{n}", version=n) for n in range(60)]
    recent = [decided(approvalId=f"apr_d{n}") for n in range(30)]
    view = app_home(pending, recent, test_mode=True)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    shown = texts(view["blocks"])
    assert "Waiting for review (60)" in shown and "more waiting" in shown and "more in" in shown
    first = buttons(view["blocks"])[0]
    assert ButtonRef.loads(first["value"]) == ButtonRef(approval_id="apr_0", version=0)
    empty = app_home([], [], test_mode=False)
    assert "Nothing is waiting" in texts(empty["blocks"])


def test_reminder_mentions_users_and_groups():
    text = reminder_text(approval(), ["U0ANN", "S0FINANCE"])
    assert "<@U0ANN>" in text and "<!subteam^S0FINANCE>" in text and "Refund $349.00 USD" in text


def test_alerts_are_one_line_each():
    error = {"type": "api_error", "code": None, "message": "Stripe is down\nretry later"}
    failed = decided(execution={"status": "failed", "error": error})
    cases = {
        "execution_failed": (failed, "Stripe is down retry later"),
        "expired": (approval(status="expired"), "Expired without a decision"),
        "auto_approved": (decided(decidedBy={"type": "rule", "name": "small"}, rule="small"), "rule “small”"),
    }
    for kind, (subject, expected) in cases.items():
        text = alert_text(kind, subject, "https://fake.slack.com/archives/C0REVIEW/p1")
        assert "\n" not in text and expected in text and "apr_01HZX" in text
        assert text.endswith("|Open the request>")
    assert "Open the request" not in alert_text("expired", approval(), None)
    with pytest.raises(ValueError):
        alert_text("exploded", approval(), None)
