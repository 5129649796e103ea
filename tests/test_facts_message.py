"""Stripe's facts in the review message, end to end: requests made through the HTTP API, verified
against the fake Stripe, posted to the fake Slack; the tests read the blocks Slack received."""

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.blocks.facts import FACTS_BLOCK_ID
from bot.ids import field_block_id
from tests.fakes.stripe import FakeStripe
from tests.slack_helpers import SlackHarness, slack_harness

STRIPE_KEY = "sk_test_123"


@pytest.fixture
def stripe() -> AsyncIterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def slack(make_settings: Any, clock: Any, stripe: FakeStripe) -> AsyncIterator[SlackHarness]:
    async with slack_harness(make_settings, clock, stripe_secret_key=STRIPE_KEY,
                             stripe_api_base=stripe.url) as harness:
        yield harness


def section(message: dict[str, Any]) -> str:
    """The "What Stripe says" section as a reader sees it: its blocks' text, from the heading to the buttons."""
    blocks = message["blocks"]
    start = next(i for i, block in enumerate(blocks) if block.get("block_id") == FACTS_BLOCK_ID)
    texts = []
    for block in blocks[start:]:
        if block["type"] == "section" and block.get("text", {}).get("text", "").startswith("*Why review:*"):
            break
        if block["type"] in ("actions", "divider"):
            break
        texts.append(block.get("text", {}).get("text", ""))
        texts.extend(element.get("text", "") for element in block.get("elements", []))
    return "\n".join(texts)


async def posted_section(slack: SlackHarness, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    created = await slack.request(body)
    await slack.settle()
    assert created["status"] == "pending", created
    return created, section(await slack.message(created["approvalId"]))


async def test_refund_message_shows_charge_card_risk_and_customer(slack: SlackHarness, stripe: FakeStripe):
    customer = stripe.add_customer(name="Jane Doe", email="jane@example.com")["id"]
    for _ in range(2):
        earlier = stripe.add_charge(4000, "usd", customer=customer, age_days=40)
        stripe.add_refund(earlier["id"], 4000, age_days=20)
    charge = stripe.add_charge(34900, "usd", customer=customer, age_days=26.5,
                               card={"brand": "visa", "last4": "4242", "country": "US"})
    _, text = await posted_section(slack, {
        "action": "issue_refund", "summary": "Refund a duplicate charge",
        "details": {"charge_id": charge["id"], "amount_cents": 34900, "reason": "duplicate"}})
    charge_line, card_line, customer_line = text.splitlines()[1:4]
    assert charge_line.startswith("*Charge* $349.00 USD on <!date^")
    assert charge_line.endswith("(26 days ago) · refunded so far $0.00 USD · still refundable $349.00 USD")
    assert card_line == "Visa •••• 4242 (US) · Radar risk: normal · not disputed"
    assert customer_line.startswith("*Customer* “Jane Doe” &lt;jane@example.com&gt; <https://dashboard.stripe.com"
                                    f"/test/customers/{customer}|{customer}>")
    assert customer_line.endswith(" · 2 refunds in 90 days ($80.00 USD)")


async def test_old_risky_disputed_charge_is_flagged(slack: SlackHarness, stripe: FakeStripe):
    charge = stripe.add_charge(34900, "usd", customer=None, age_days=94.5, risk_level="elevated")
    stripe.add_dispute(charge=charge["id"], amount=34900, reason="fraudulent")
    _, text = await posted_section(slack, {
        "action": "issue_refund", "summary": "Refund", "details": {"charge_id": charge["id"], "reason": "duplicate"}})
    assert "\n⚠️ charge is 94 days old\n" in text
    assert "Radar risk: *elevated* · *disputed* (needs response)" in text
    assert "*Customer* none on this charge" in text


async def test_a_customers_name_cannot_speak_for_stripe_or_ping_the_channel(slack: SlackHarness,
                                                                              stripe: FakeStripe):
    # Customers name themselves at checkout: a fraudster's name tries to draw a fact line and a ping.
    name = "Jane\n*Radar risk:* normal · <!channel> verified <https://evil.example|refund ok>\u202e"
    customer = stripe.add_customer(name=name, email="x@example.com>\n⚠️ approved")["id"]
    charge = stripe.add_charge(34900, "usd", customer=customer)
    created, text = await posted_section(slack, {
        "action": "issue_refund", "summary": "Refund", "details": {"charge_id": charge["id"], "reason": "duplicate"}})
    posted = json.dumps((await slack.message(created["approvalId"]))["blocks"], ensure_ascii=False)
    assert "<!channel>" not in posted and "<https://evil" not in posted and "\u202e" not in posted
    assert not [line for line in text.splitlines() if line.startswith(("*Radar risk:*", "⚠️ approved"))]
    customer_line = next(line for line in text.splitlines() if line.startswith("*Customer*"))
    assert "&lt;!channel&gt;" in customer_line and "⚠️ approved" in customer_line
    assert "*Radar risk:*" not in customer_line  # no bold label drawn by the name


async def test_refund_message_shows_the_charge_as_stripe_has_it(slack: SlackHarness, stripe: FakeStripe):
    charge = stripe.add_charge(34900, "usd", amount_refunded=10000)
    created, text = await posted_section(slack, {
        "action": "issue_refund", "summary": "Refund the rest of a duplicate",
        "details": {"charge_id": charge["id"], "amount_cents": 5000, "reason": "duplicate"}})
    assert text.startswith("*What Stripe says*")
    assert "*Charge* $349.00 USD on <!date^" in text
    assert "refunded so far $100.00 USD · still refundable $249.00 USD" in text
    assert "Not verified" not in text and "Read from Stripe <!date^" in text

    # The edit modal's amount hint comes from the same facts.
    await slack.click("edit", created["approvalId"])
    view = slack.last_view()
    amount = next(b for b in view["blocks"] if b.get("block_id") == field_block_id("amount_cents"))
    assert amount["hint"]["text"] == "Stripe says at most $249.00 USD can still be refunded."

    # Once decided, the message keeps what the reviewer saw.
    await slack.click("approve", created["approvalId"])
    await slack.settle()
    decided = await slack.message(created["approvalId"])
    assert "still refundable $249.00 USD" in section(decided)


async def test_payout_message_shows_the_balance_and_warns_above_it(slack: SlackHarness, stripe: FakeStripe):
    stripe.set_balance("usd", 120000, pending=30000)
    bank = stripe.add_bank_account("usd", bank_name="STRIPE TEST BANK", last4="6789")
    created, text = await posted_section(slack, {
        "action": "create_payout", "summary": "Weekly payout", "execute": False,
        "details": {"amount_cents": 150000, "currency": "usd", "method": "standard"}})
    assert "\n⚠️ payout exceeds available balance\n" in text
    assert "\n*Balance (USD)* available $1,200.00 USD · pending $300.00 USD\n" in text
    assert f"\n*Destination* bank account “STRIPE TEST BANK” •••• 6789 · `{bank['id']}`\n" in text

    await slack.click("edit", created["approvalId"])
    amount = next(b for b in slack.last_view()["blocks"] if b.get("block_id") == field_block_id("amount_cents"))
    assert amount["hint"]["text"].endswith("Stripe says the available balance is $1,200.00 USD.")


async def test_subscription_change_shows_the_plan_and_stripes_preview(slack: SlackHarness, stripe: FakeStripe):
    subscription = stripe.add_subscription(items=({"quantity": 3, "unit_amount": 2000},))
    item = subscription["items"]["data"][0]["id"]
    _, text = await posted_section(slack, {
        "action": "update_subscription", "summary": "Two seats fewer",
        "details": {"subscription_id": subscription["id"], "items": [{"id": item, "quantity": 1}],
                    "proration_behavior": "create_prorations"}})
    assert "*Subscription* active · renews <!date^" in text
    assert "$20.00 USD / month × 3" in text
    assert "\n*Next invoice* <!date^" in text and " · $60.00 USD\n" in text
    assert re.search(r"\n\*With this change\* next invoice \$[0-9.,]+ USD · proration -\$[0-9.,]+ USD\n", text)


async def test_dispute_message_shows_reason_amount_and_deadline(slack: SlackHarness, stripe: FakeStripe):
    dispute = stripe.add_dispute(amount=5000, reason="fraudulent")
    _, text = await posted_section(slack, {
        "action": "close_dispute", "summary": "Accept the loss", "details": {"dispute_id": dispute["id"]}})
    assert "*Dispute* needs response · reason: fraudulent · $50.00 USD · evidence due by <!date^" in text


async def test_unverified_request_says_so_then_shows_the_facts_once_stripe_answers(
        slack: SlackHarness, stripe: FakeStripe, clock: Any):
    dispute = stripe.add_dispute(amount=5000, reason="fraudulent")
    stripe.fail_next(2, 503, methods=("GET",))  # the read at intake and the first retry
    created, text = await posted_section(slack, {
        "action": "close_dispute", "summary": "Accept the loss", "details": {"dispute_id": dispute["id"]}})
    assert created["stripeFacts"]["status"] == "unverified"
    assert text.startswith("*What Stripe says*\n⚠️ *Not verified against Stripe*")
    assert "keeps asking Stripe" in text and "_Why:_ Stripe answered 503" in text
    assert "reason: fraudulent" not in text

    clock.advance(hours=1)
    await slack.settle()
    assert (await slack.approval(created["approvalId"]))["stripeFacts"]["status"] == "verified"
    text = section(await slack.message(created["approvalId"]))
    assert "Not verified" not in text and "*Dispute* needs response · reason: fraudulent" in text
