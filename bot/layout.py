"""How an approval's facts read in Slack: one headline and labelled lines per action family.

Pure text (Slack mrkdwn), no Block Kit: the builders in `bot.blocks` decide where these go.

Agent text is data, never markup. Everything an agent (or anyone outside this code) wrote goes
through `literal()` before it joins our mrkdwn, or `plain_text()` before it fills a `plain_text`
object: control and bidi characters are removed, line breaks collapsed, Slack's `&`, `<` and `>`
escaped, and (in mrkdwn) the formatting marks `*`, `_`, `~` and `` ` `` replaced by look-alikes
that Slack does not parse. So no agent string can mention anyone, draw a link, start a line or
make a bold label; only this module's own text does that. Dashboard links are built only from
ids that match Stripe's id syntax.
"""

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from api.actions import get_action
from api.money import format_money

# The builders reach the inert-text helpers through this module, as they reach the layout's own.
from bot.inert import escape as escape
from bot.inert import literal as literal
from bot.inert import one_line as one_line
from bot.inert import plain_text as plain_text
from bot.inert import quote_lines as quote_lines
from bot.inert import truncate as truncate

DASHBOARD = "https://dashboard.stripe.com"

# Which dashboard page shows an object, by its id prefix; only ids of exactly this shape are linked.
_DASHBOARD_PAGES = {
    "ch": "payments",
    "py": "payments",
    "pi": "payments",
    "re": "refunds",
    "cus": "customers",
    "sub": "subscriptions",
    "dp": "disputes",
    "du": "disputes",
    "po": "payouts",
    "in": "invoices",
    "price": "prices",
    "prod": "products",
}
_STRIPE_ID = re.compile(r"(ch|py|pi|re|cus|sub|dp|du|po|in|price|prod)_[A-Za-z0-9]{1,250}", re.ASCII)
# Slack user (U, W) and user-group (S) ids: the only things we ever turn into a mention.
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,40}", re.ASCII)
_SLACK_GROUP = re.compile(r"S[A-Z0-9]{2,40}", re.ASCII)
_CURRENCY = re.compile(r"[A-Za-z]{3}", re.ASCII)

# Fields whose values are Stripe enums, read better as words (`requested_by_customer`).
_WORDY_FIELDS = frozenset({"reason", "method", "proration_behavior"})

def humanize(value: Any) -> str:
    """`requested_by_customer` → `requested by customer`."""
    return str(value).replace("_", " ")


def yes_no(value: Any) -> str:
    return "yes" if value else "no"


def money(amount_minor: Any, currency: Any) -> str:
    """`$349.00 USD`; without a known currency the bare minor-unit count, never a guess."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        return literal(amount_minor)
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        return f"{amount_minor:,} (minor units, currency not given)"
    return format_money(amount_minor, currency)


def dashboard_url(object_id: Any, *, test_mode: bool) -> str | None:
    """The dashboard page of a Stripe object, for ids of Stripe's own syntax only: anything else
    (`ch_1|text`, `ch_1><!channel>`) is not an id and gets no link."""
    match = _STRIPE_ID.fullmatch(object_id) if isinstance(object_id, str) else None
    if match is None:
        return None
    mode = "/test" if test_mode else ""
    return f"{DASHBOARD}{mode}/{_DASHBOARD_PAGES[match[1]]}/{object_id}"


def stripe_link(object_id: Any, *, test_mode: bool) -> str:
    """An object id linked to its dashboard page, or shown as code when it has none."""
    url = dashboard_url(object_id, test_mode=test_mode)
    return f"<{url}|{object_id}>" if url else f"`{literal(object_id)}`"


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
    if kind == "slack_user" and isinstance(ident, str) and _SLACK_USER.fullmatch(ident):
        return f"<@{ident}>"
    if kind == "rule":
        return f"rule “{literal(name or ident or 'unnamed')}”"
    if kind == "system":
        return "Cheqpoint"
    return literal(name or ident or "an operator")


def mention(slack_id: str) -> str:
    """`U…`/`W…` users as `<@…>`, `S…` user groups as `<!subteam^…>`; anything else as text."""
    if _SLACK_GROUP.fullmatch(slack_id):
        return f"<!subteam^{slack_id}>"
    if _SLACK_USER.fullmatch(slack_id):
        return f"<@{slack_id}>"
    return literal(slack_id)


def line(label: str, value: str) -> str:
    """`*Label:* value`. Both are mrkdwn already: labels that are outside text go through `literal`."""
    return f"*{label}:* {value}"


def plain(value: Any) -> str:
    """An outside value inside a fact line."""
    return literal(value)


# -- headlines (plain text, for header blocks and notification text) -------------------------------


def headline(action: str, details: Mapping[str, Any]) -> str:
    """The request in a few words with its money: `Refund $349.00 USD` (each action words its own)."""
    spec = get_action(action)
    return spec.headline(dict(details)) if spec is not None else humanize(action).capitalize()


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
            lines.append(line(literal(humanize(key).capitalize()), plain(value)))
    if "submit" in details:
        lines.append(line("Submit to the bank now", yes_no(details["submit"])))
    return lines


def _generic_lines(details: Mapping[str, Any], test_mode: bool) -> Lines:
    """Actions outside the catalogue and read-only lookups: every field, ids linked."""
    lines = []
    for key, value in details.items():
        label = literal(humanize(key).capitalize(), 100)
        lines.append(line(label, field_value(key, value, details, test_mode=test_mode)))
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


# By the action's family (`ActionSpec.family`): an action of a known family needs nothing here.
_FAMILIES: dict[str, Callable[[Mapping[str, Any], bool], Lines]] = {
    "refund": _refund_lines,
    "payout": _payout_lines,
    "subscription": _subscription_lines,
    "dispute": _dispute_lines,
}


def detail_lines(action: str, details: Mapping[str, Any], *, test_mode: bool) -> Lines:
    """The details as labelled mrkdwn lines, laid out for the action's family."""
    spec = get_action(action)
    family = spec.family if spec is not None else None
    return _FAMILIES.get(family or "", _generic_lines)(details, test_mode)


def field_value(name: str, value: Any, details: Mapping[str, Any], *, test_mode: bool = False) -> str:
    """One field's value in words: amounts as money, booleans as yes/no, ids linked."""
    if value is None:
        return "full refund" if name == "amount_cents" else "—"
    if name.endswith("_cents") or name == "amount":
        return money(value, details.get("currency"))
    if isinstance(value, bool):
        return yes_no(value)
    if dashboard_url(value, test_mode=test_mode):
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
        lines.append(line(literal(field_label(name), 100), f"{old} → {new}"))
    return lines
