"""How an approval's facts read in Slack: one headline and labelled lines per action family.

Pure text (Slack mrkdwn), no Block Kit: the builders in `bot.blocks` decide where these go.
Everything an agent wrote is escaped, so a summary cannot mention `<!channel>` or fake a link.
"""

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from api.money import format_money

DASHBOARD = "https://dashboard.stripe.com"

# Which dashboard page shows an object, by its id prefix. Ids without a page stay plain code.
_DASHBOARD_PAGES = {
    "ch_": "payments",
    "py_": "payments",
    "pi_": "payments",
    "re_": "refunds",
    "cus_": "customers",
    "sub_": "subscriptions",
    "dp_": "disputes",
    "du_": "disputes",
    "po_": "payouts",
    "in_": "invoices",
    "price_": "prices",
    "prod_": "products",
}

# Fields whose values are Stripe enums, read better as words (`requested_by_customer`).
_WORDY_FIELDS = frozenset({"reason", "method", "proration_behavior"})

# Longest values shown inline; the rest is in Cheqpoint and the Stripe dashboard.
_VALUE_LIMIT = 300


def escape(text: Any) -> str:
    """Slack's three control characters, so user text is shown and never parsed."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def humanize(value: Any) -> str:
    """`requested_by_customer` → `requested by customer`."""
    return str(value).replace("_", " ")


def yes_no(value: Any) -> str:
    return "yes" if value else "no"


def money(amount_minor: Any, currency: Any) -> str:
    """`$349.00 USD`; without a known currency the bare minor-unit count, never a guess."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        return escape(amount_minor)
    if not isinstance(currency, str) or not currency:
        return f"{amount_minor:,} (minor units, currency not given)"
    return format_money(amount_minor, currency)


def dashboard_url(object_id: str, *, test_mode: bool) -> str | None:
    for prefix, page in _DASHBOARD_PAGES.items():
        if object_id.startswith(prefix):
            mode = "/test" if test_mode else ""
            return f"{DASHBOARD}{mode}/{page}/{object_id}"
    return None


def stripe_link(object_id: Any, *, test_mode: bool) -> str:
    """An object id linked to its dashboard page, or shown as code when it has none."""
    text = escape(object_id)
    url = dashboard_url(str(object_id), test_mode=test_mode)
    return f"<{url}|{text}>" if url else f"`{text}`"


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def slack_date(value: Any) -> str | None:
    """A time every reader sees in their own time zone, with a UTC fallback for old clients."""
    moment = parse_time(value)
    if moment is None:
        return None
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def actor(decided_by: Mapping[str, Any] | None) -> str:
    """Who decided: Slack users as mentions, operators and rules by name."""
    if not decided_by:
        return "someone"
    kind, ident, name = decided_by.get("type"), decided_by.get("id"), decided_by.get("name")
    if kind == "slack_user" and ident:
        return f"<@{escape(ident)}>"
    if kind == "rule":
        return f"rule “{escape(name or ident or 'unnamed')}”"
    if kind == "system":
        return "Cheqpoint"
    return escape(name or ident or "an operator")


def mention(slack_id: str) -> str:
    """`U…`/`W…` users as `<@…>`, `S…` user groups as `<!subteam^…>`."""
    if slack_id.startswith("S"):
        return f"<!subteam^{escape(slack_id)}>"
    return f"<@{escape(slack_id)}>"


def line(label: str, value: str) -> str:
    return f"*{label}:* {value}"


def plain(value: Any) -> str:
    return escape(truncate(str(value), _VALUE_LIMIT))


# -- headlines (plain text, for header blocks and notification text) -------------------------------


def headline(action: str, details: Mapping[str, Any]) -> str:
    """The request in a few words with its money: `Refund $349.00 USD`."""
    amount, currency = details.get("amount_cents"), details.get("currency")
    if action == "issue_refund":
        return f"Refund {money(amount, currency)}" if amount is not None else "Full refund"
    if action == "create_payout":
        method = " (instant)" if details.get("method") == "instant" else ""
        return f"Payout {money(amount, currency)}{method}"
    if action == "cancel_subscription":
        when = " at period end" if details.get("at_period_end") else ""
        return f"Cancel subscription {details.get('subscription_id', '')}{when}".strip()
    if action == "update_subscription":
        return f"Update subscription {details.get('subscription_id', '')}".strip()
    if action == "close_dispute":
        return f"Close dispute {details.get('dispute_id', '')} (accept the loss)"
    if action == "submit_dispute_evidence":
        verb = "Submit" if details.get("submit") else "Save"
        return f"{verb} evidence for dispute {details.get('dispute_id', '')}".strip()
    return humanize(action).capitalize()


# -- detail lines per action family ------------------------------------------------------------------

Lines = list[str]


def _refund_lines(details: Mapping[str, Any], test_mode: bool) -> Lines:
    lines = []
    if "charge_id" in details:
        lines.append(line("Charge", stripe_link(details["charge_id"], test_mode=test_mode)))
    if "payment_intent_id" in details:
        lines.append(line("Payment", stripe_link(details["payment_intent_id"], test_mode=test_mode)))
    amount = details.get("amount_cents")
    refund = money(amount, details.get("currency")) if amount is not None else "full refund"
    lines.append(line("Amount", refund))
    if "reason" in details:
        lines.append(line("Reason", plain(humanize(details["reason"]))))
    if "customer_id" in details:
        lines.append(line("Customer", stripe_link(details["customer_id"], test_mode=test_mode)))
    return lines + _metadata_lines(details)


def _payout_lines(details: Mapping[str, Any], test_mode: bool) -> Lines:
    lines = [line("Amount", money(details.get("amount_cents"), details.get("currency")))]
    lines.append(line("Method", plain(details.get("method", "standard"))))
    for key, label in (
        ("destination", "Destination"),
        ("description", "Description"),
        ("statement_descriptor", "Statement descriptor"),
    ):
        if key in details:
            lines.append(line(label, plain(details[key])))
    return lines


def _subscription_lines(details: Mapping[str, Any], test_mode: bool) -> Lines:
    lines = []
    if "subscription_id" in details:
        lines.append(line("Subscription", stripe_link(details["subscription_id"], test_mode=test_mode)))
    if "at_period_end" in details:
        when = "at the end of the period" if details["at_period_end"] else "immediately"
        lines.append(line("Cancels", when))
    for key in ("prorate", "invoice_now", "cancel_at_period_end"):
        if key in details:
            lines.append(line(humanize(key).capitalize(), yes_no(details[key])))
    if "proration_behavior" in details:
        lines.append(line("Proration", plain(humanize(details["proration_behavior"]))))
    if "pause_collection" in details:
        lines.append(line("Pause collection", plain(_compact(details["pause_collection"]))))
    for item in details.get("items") or []:
        lines.append(line("Item", plain(_compact(item))))
    return lines


def _dispute_lines(details: Mapping[str, Any], test_mode: bool) -> Lines:
    lines = []
    if "dispute_id" in details:
        lines.append(line("Dispute", stripe_link(details["dispute_id"], test_mode=test_mode)))
    evidence = details.get("evidence")
    if isinstance(evidence, Mapping):
        for key, value in evidence.items():
            lines.append(line(humanize(key).capitalize(), plain(value)))
    if "submit" in details:
        lines.append(line("Submit to the bank now", yes_no(details["submit"])))
    return lines


def _generic_lines(details: Mapping[str, Any], test_mode: bool) -> Lines:
    """Actions outside the catalogue and read-only lookups: every field, ids linked."""
    lines = []
    for key, value in details.items():
        lines.append(line(humanize(key).capitalize(), field_value(key, value, details, test_mode=test_mode)))
    return lines


def _metadata_lines(details: Mapping[str, Any]) -> Lines:
    metadata = details.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata:
        return []
    return [line("Metadata", plain(_compact(metadata)))]


def _compact(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={_compact(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return "; ".join(_compact(item) for item in value)
    return str(value)


_FAMILIES: dict[str, Callable[[Mapping[str, Any], bool], Lines]] = {
    "issue_refund": _refund_lines,
    "create_payout": _payout_lines,
    "cancel_subscription": _subscription_lines,
    "update_subscription": _subscription_lines,
    "close_dispute": _dispute_lines,
    "submit_dispute_evidence": _dispute_lines,
}


def detail_lines(action: str, details: Mapping[str, Any], *, test_mode: bool) -> Lines:
    """The details as labelled mrkdwn lines, laid out for the action's family."""
    return _FAMILIES.get(action, _generic_lines)(details, test_mode)


def field_value(name: str, value: Any, details: Mapping[str, Any], *, test_mode: bool = False) -> str:
    """One field's value in words: amounts as money, booleans as yes/no, ids linked."""
    if value is None:
        return "full refund" if name == "amount_cents" else "—"
    if name.endswith("_cents") or name == "amount":
        return money(value, details.get("currency"))
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, str) and dashboard_url(value, test_mode=test_mode):
        return stripe_link(value, test_mode=test_mode)
    if isinstance(value, Mapping | list | tuple):
        return plain(_compact(value))
    return plain(humanize(value) if name in _WORDY_FIELDS else value)


def lookup(details: Mapping[str, Any], path: str) -> Any:
    """A dotted field path into the details (`items.0.quantity`); None where it leads nowhere."""
    node: Any = details
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list | tuple) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def field_label(path: str) -> str:
    """`amount_cents` → `Amount`, `items.0.quantity` → `Item 1 quantity`."""
    if path == "amount_cents":
        return "Amount"
    words = []
    for part in path.split("."):
        if part.isdigit() and words:
            words[-1] = f"{words[-1].removesuffix('s')} {int(part) + 1}"
        else:
            words.append(humanize(part))
    return " ".join(words).capitalize()


def change_lines(changes: Mapping[str, Any], details: Mapping[str, Any]) -> Lines:
    """Each edited field as `old → new`."""
    lines = []
    for name, change in changes.items():
        if not isinstance(change, Mapping):
            continue
        old = field_value(name, change.get("from"), details)
        new = field_value(name, change.get("to"), details)
        lines.append(line(field_label(name), f"{old} → {new}"))
    return lines
