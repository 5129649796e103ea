"""What Stripe says about a request: the facts read from Stripe when it was verified, per action family.

They sit apart from the agent's details so a reviewer compares the agent's word with Stripe's. They
are still text from outside: a customer's name or a bank's name is whatever someone typed into
Stripe, so every string is cleaned of control characters, kept on one line and escaped.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.models.blocks import Block

from api.actions import get_action
from api.approvals.enums import ApprovalStatus
from bot import layout
from bot.blocks.common import SECTION_LIMIT, Approval, context, mrkdwn_section
from bot.blocks.fact_values import (
    Facts,
    as_count,
    as_mapping,
    clean,
    currency_code,
    day_text,
    days_ago,
    id_or_text,
    money_text,
    word,
)

FACTS_BLOCK_ID = "stripe_facts"
HEADING = "*What Stripe says*"
WARNING_MARK = "⚠️"
NOT_VERIFIED = (
    f"{WARNING_MARK} *Not verified against Stripe* — the details above are the agent's word only. "
    "Stripe is read again before anything is executed."
)
# Verification lists this warning too; the section's own first line already says it.
_UNVERIFIED_WARNING = "not verified against stripe"
RETRYING = "Cheqpoint keeps asking Stripe and updates this message when it answers."

# Enough to scan; a request with more is in Cheqpoint and the Stripe dashboard in full.
MAX_WARNINGS = 8
MAX_ITEMS = 5
MAX_SECTIONS = 3
_WARNING_LIMIT = 300

_CARD_BRANDS = {
    "amex": "American Express",
    "mastercard": "Mastercard",
    "jcb": "JCB",
    "unionpay": "UnionPay",
    "diners": "Diners Club",
    "cartes_bancaires": "Cartes Bancaires",
}
_RISKY_RADAR_LEVELS = frozenset({"elevated", "highest"})
_TROUBLED_SUBSCRIPTIONS = frozenset({"past_due", "unpaid", "incomplete", "incomplete_expired", "canceled", "paused"})
_LAST4 = re.compile(r"^[0-9]{4}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")

def _family(approval: Mapping[str, Any]) -> str | None:
    """Which of Stripe's facts the request's action reads (its spec says), or None."""
    spec = get_action(str(approval.get("action", "")))
    return spec.family if spec is not None else None


# -- the blocks --------------------------------------------------------------------------------------


def stripe_facts_blocks(approval: Approval, *, stripe_configured: bool, test_mode: bool) -> list[Block]:
    """The "What Stripe says" section for a catalogue write; nothing for other actions.

    `stripeFacts` missing while Stripe is configured means nothing was read yet: that is said,
    never left for a reviewer to take the agent's details as checked.
    """
    family = _family(approval)
    if family is None:
        return []
    recorded = approval.get("stripeFacts")
    if not isinstance(recorded, Mapping):
        return [mrkdwn_section(f"{HEADING}\n{NOT_VERIFIED}", block_id=FACTS_BLOCK_ID)] if stripe_configured else []
    lines: list[str] = []
    if recorded.get("status") != "verified":
        lines.append(NOT_VERIFIED)
        if recorded.get("status") == "unverified" and approval.get("status") == ApprovalStatus.PENDING:
            lines.append(RETRYING)
        if recorded.get("reason"):
            lines.append(f"_Why:_ {clean(recorded['reason'], _WARNING_LIMIT)}")
    warnings = recorded.get("warnings")
    if isinstance(warnings, list | tuple):
        warnings = [w for w in warnings if not (isinstance(w, str) and w.strip().lower() == _UNVERIFIED_WARNING)]
    lines.extend(warning_lines(warnings))
    lines.extend(_mode_lines(recorded.get("livemode"), test_mode))
    lines.extend(fact_lines(family, as_mapping(recorded.get("facts")), test_mode=test_mode))
    blocks: list[Block] = _sections([HEADING, *lines])
    read_at = layout.slack_date(recorded.get("verifiedAt")) if recorded.get("status") == "verified" else None
    if read_at:
        blocks.append(context(f"Read from Stripe {read_at}"))
    return blocks


def _sections(lines: list[str]) -> list[Block]:
    """Lines packed into as few sections as Slack's limit allows; the first carries the block id."""
    chunks: list[list[str]] = [[]]
    for text in lines:
        if chunks[-1] and len("\n".join([*chunks[-1], text])) > SECTION_LIMIT:
            chunks.append([])
        chunks[-1].append(text)
    shown = chunks[:MAX_SECTIONS]
    if len(chunks) > MAX_SECTIONS:
        shown[-1] = [*shown[-1][:-1], "_… more in Cheqpoint and the Stripe dashboard._"]
    blocks: list[Block] = []
    for index, chunk in enumerate(shown):
        blocks.append(mrkdwn_section("\n".join(chunk), block_id=FACTS_BLOCK_ID if index == 0 else None))
    return blocks


def warning_lines(warnings: Any) -> list[str]:
    """Each warning marked; past MAX_WARNINGS, how many more there are."""
    if not isinstance(warnings, list | tuple):
        return []
    texts = [clean(w, _WARNING_LIMIT) for w in warnings if isinstance(w, str) and w.strip()]
    lines = [f"{WARNING_MARK} {text}" for text in texts[:MAX_WARNINGS]]
    if len(texts) > MAX_WARNINGS:
        lines.append(f"{WARNING_MARK} … and {len(texts) - MAX_WARNINGS} more warnings")
    return lines


def _mode_lines(livemode: Any, test_mode: bool) -> list[str]:
    # Verification refuses objects of the other mode; should one slip through, it must not look normal.
    if livemode is True and test_mode:
        return [f"{WARNING_MARK} *This object is in Stripe's live mode*, but Cheqpoint uses a test key."]
    if livemode is False and not test_mode:
        return [f"{WARNING_MARK} *This object is Stripe test data*, but Cheqpoint uses a live key."]
    return []


def fact_lines(family: str, facts: Facts, *, test_mode: bool) -> list[str]:
    """The facts as short mrkdwn lines, laid out for the action's family."""
    return _LINES[family](facts, test_mode)


# -- refunds -----------------------------------------------------------------------------------------


def _refund_lines(facts: Facts, test_mode: bool) -> list[str]:
    lines: list[str] = []
    charge = as_mapping(facts.get("charge"))
    currency = currency_code(charge.get("currency"))
    if charge:
        head = "*Charge*"
        amount = money_text(charge.get("amount"), currency)
        if amount:
            head += f" {amount}"
        day = day_text(charge.get("created"))
        if day:
            head += f" on {day}"
        age = as_count(charge.get("age_days"))
        if age is not None:
            head += f" ({days_ago(age)})"
        parts = [head]
        refunded = money_text(charge.get("amount_refunded"), currency)
        if refunded:
            parts.append(f"refunded so far {refunded}")
        refundable = money_text(charge.get("refundable"), currency)
        if refundable:
            parts.append(f"still refundable {refundable}")
        lines.append(" · ".join(parts))
        lines.append(" · ".join(_charge_state(charge)))
    if "customer" in facts:
        lines.append(_customer_line(as_mapping(facts.get("customer")), currency, test_mode))
    return lines


def _charge_state(charge: Facts) -> list[str]:
    parts = []
    card = _card(as_mapping(charge.get("payment_method")))
    if card:
        parts.append(card)
    risk = charge.get("risk_level")
    if isinstance(risk, str) and risk:
        level = f"*{word(risk)}*" if risk in _RISKY_RADAR_LEVELS else word(risk)
        parts.append(f"Radar risk: {level}")
    if charge.get("disputed"):
        status = charge.get("dispute_status")
        parts.append("*disputed*" + (f" ({word(status)})" if status else ""))
    elif charge.get("disputed") is False:
        parts.append("not disputed")
    return parts or ["no payment method details"]


def _card(method: Facts) -> str | None:
    if not method:
        return None
    brand = method.get("brand")
    name = _CARD_BRANDS.get(brand, word(brand).capitalize()) if isinstance(brand, str) and brand else "Card"
    text = clean(name, 40)
    last4 = method.get("last4")
    if isinstance(last4, str) and _LAST4.match(last4):
        text += f" •••• {last4}"
    country = method.get("country")
    if isinstance(country, str) and _COUNTRY.match(country):
        text += f" ({country})"
    return text


def _customer_line(customer: Facts, currency: str | None, test_mode: bool) -> str:
    if not customer:
        return "*Customer* none on this charge"
    who = []
    if customer.get("name"):
        who.append(f"“{clean(customer['name'])}”")
    if customer.get("email"):
        who.append(f"&lt;{clean(customer['email'])}&gt;")
    if customer.get("id"):
        who.append(id_or_text(customer["id"], test_mode))
    parts = ["*Customer* " + (" ".join(who) or "unnamed")]
    history = as_mapping(customer.get("refunds_90d"))
    count = as_count(history.get("count"))
    if count is not None:
        text = f"{count} refund{'' if count == 1 else 's'} in 90 days"
        total = money_text(history.get("amount"), currency)
        if total and count:
            text += f" ({total})"
        parts.append(text)
    return " · ".join(parts)


# -- payouts -----------------------------------------------------------------------------------------


def _payout_lines(facts: Facts, test_mode: bool) -> list[str]:
    lines: list[str] = []
    balance = as_mapping(facts.get("balance"))
    if balance:
        currency = currency_code(balance.get("currency"))
        label = f"*Balance{f' ({currency.upper()})' if currency else ''}*"
        parts = [
            f"{name} {shown}"
            for name, shown in (
                ("available", money_text(balance.get("available"), currency)),
                ("pending", money_text(balance.get("pending"), currency)),
            )
            if shown
        ]
        lines.append(f"{label} {' · '.join(parts) or 'not reported'}")
    if "destination" in facts:
        lines.append(_destination_line(as_mapping(facts.get("destination")), test_mode))
    return lines


def _destination_line(destination: Facts, test_mode: bool) -> str:
    if not destination:
        return "*Destination* the account's default"
    kind = destination.get("type")
    parts = [word(kind) if isinstance(kind, str) and kind else "account"]
    if destination.get("bank_name"):
        parts.append(f"“{clean(destination['bank_name'])}”")
    last4 = destination.get("last4")
    if isinstance(last4, str) and _LAST4.match(last4):
        parts.append(f"•••• {last4}")
    text = "*Destination* " + " ".join(parts)
    if destination.get("id"):
        text += f" · {id_or_text(destination['id'], test_mode)}"
    return text


# -- subscriptions -----------------------------------------------------------------------------------


def _subscription_lines(facts: Facts, test_mode: bool) -> list[str]:
    lines: list[str] = []
    subscription = as_mapping(facts.get("subscription"))
    currency = currency_code(subscription.get("currency"))
    if subscription:
        status = subscription.get("status")
        shown = word(status) if status else "status unknown"
        parts = [f"*Subscription* {f'*{shown}*' if status in _TROUBLED_SUBSCRIPTIONS else shown}"]
        period_end = day_text(subscription.get("current_period_end"))
        cancelling = bool(subscription.get("cancel_at_period_end"))
        if period_end:
            parts.append(f"{'ends' if cancelling else 'renews'} {period_end}")
        elif cancelling:
            parts.append("set to cancel at period end")
        if subscription.get("customer"):
            parts.append(f"customer {id_or_text(subscription['customer'], test_mode)}")
        lines.append(" · ".join(parts))
        items = [as_mapping(item) for item in subscription.get("items") or [] if isinstance(item, Mapping)]
        lines.extend(_item_line(item, currency, test_mode) for item in items[:MAX_ITEMS])
        if len(items) > MAX_ITEMS:
            lines.append(f"… and {len(items) - MAX_ITEMS} more items")
    upcoming = as_mapping(facts.get("next_invoice"))
    if upcoming:
        day = day_text(upcoming.get("date"))
        amount = money_text(upcoming.get("amount"), currency_code(upcoming.get("currency")) or currency)
        lines.append("*Next invoice* " + (" · ".join(p for p in (day, amount) if p) or "not scheduled"))
    preview = as_mapping(facts.get("preview"))
    if preview:
        lines.append(_preview_line(preview, currency))
    return lines


def _item_line(item: Facts, currency: str | None, test_mode: bool) -> str:
    text = "*Plan* " + (id_or_text(item["price"], test_mode) if item.get("price") else "price unknown")
    if item.get("product"):
        text += f" ({id_or_text(item['product'], test_mode)})"
    price = money_text(item.get("unit_amount"), currency)
    if price:
        interval = item.get("interval")
        text += f" · {price}" + (f" / {word(interval)}" if isinstance(interval, str) and interval else "")
    quantity = as_count(item.get("quantity"))
    if quantity is not None:
        text += f" × {quantity}"
    return text


def _preview_line(preview: Facts, currency: str | None) -> str:
    currency = currency_code(preview.get("currency")) or currency
    parts = []
    due = money_text(preview.get("amount_due"), currency)
    if due:
        parts.append(f"next invoice {due}")
    proration = preview.get("proration_amount")
    if proration == 0:
        parts.append("no proration")
    elif money_text(proration, currency):
        parts.append(f"proration {money_text(proration, currency)}")
    return "*With this change* " + (" · ".join(parts) or "no preview")


# -- disputes ----------------------------------------------------------------------------------------


def _dispute_lines(facts: Facts, test_mode: bool) -> list[str]:
    dispute = as_mapping(facts.get("dispute"))
    if not dispute:
        return []
    status = dispute.get("status")
    parts = [f"*Dispute* {word(status) if status else 'status unknown'}"]
    if dispute.get("reason"):
        parts.append(f"reason: {word(dispute['reason'])}")
    amount = money_text(dispute.get("amount"), currency_code(dispute.get("currency")))
    if amount:
        parts.append(amount)
    due = layout.slack_date(dispute.get("evidence_due_by"))
    if due:
        parts.append(f"evidence due by {due}")
    if dispute.get("charge"):
        parts.append(f"charge {id_or_text(dispute['charge'], test_mode)}")
    return [" · ".join(parts)]


_LINES: dict[str, Callable[[Facts, bool], list[str]]] = {
    "refund": _refund_lines,
    "payout": _payout_lines,
    "subscription": _subscription_lines,
    "dispute": _dispute_lines,
}


# -- the edit modal's limit --------------------------------------------------------------------------


def amount_limit_hint(approval: Approval) -> str | None:
    """What Stripe allows for the amount, for the edit modal: the refundable rest, or the balance."""
    recorded = approval.get("stripeFacts")
    if not isinstance(recorded, Mapping) or recorded.get("status") != "verified":
        return None
    facts = as_mapping(recorded.get("facts"))
    family = _family(approval)
    if family == "refund":
        charge = as_mapping(facts.get("charge"))
        refundable = money_text(charge.get("refundable"), currency_code(charge.get("currency")))
        return f"Stripe says at most {refundable} can still be refunded." if refundable else None
    if family == "payout":
        balance = as_mapping(facts.get("balance"))
        available = money_text(balance.get("available"), currency_code(balance.get("currency")))
        return f"Stripe says the available balance is {available}." if available else None
    return None
