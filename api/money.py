"""Money in integer minor units, with each currency's own exponent.

Stripe amounts are integers in the currency's smallest unit. People read and type major units, so
conversion in both directions is exact: formatting goes through `Decimal`, and parsing reads the
digits themselves (never `Decimal(text)`, which accepts `1e999999999`, `５０` and `5_0` and may spend
seconds on an exponent before it fails).
"""

import re
from decimal import Decimal

# Stripe's zero-decimal and three-decimal currencies; every other currency has two decimals.
# https://docs.stripe.com/currencies#special-cases
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "$", "aud": "$", "nzd": "$", "inr": "₹"}
# Every symbol someone might type, so a wrong one is named rather than called "not a number".
_ANY_SYMBOL = frozenset("$€£¥₹₩₽₺₪₫฿₱₦₴₡₲₵₸﹩＄￥￡")

# Longest amount text read at all: more digits than any real amount, few enough to refuse at once.
MAX_AMOUNT_TEXT = 32
# Digits before the decimal point: Stripe's largest amounts have 12 or fewer minor-unit digits.
MAX_WHOLE_DIGITS = 15

# Plain ASCII decimals: `50`, `50.5`, `1000.50`, or thousands grouped in threes: `1,000.50`.
_PLAIN = re.compile(r"(?P<whole>[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.(?P<fraction>[0-9]+))?", re.ASCII)


def exponent(currency: str) -> int:
    """How many decimal places the currency's major unit has."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_major(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-exponent(currency))


def format_money(amount_minor: int, currency: str) -> str:
    """`34900, "usd"` → `$349.00 USD`; `5000, "jpy"` → `¥5,000 JPY`."""
    places = exponent(currency)
    major = to_major(amount_minor, currency)
    symbol = SYMBOLS.get(currency.lower(), "")
    sign = "-" if major < 0 else ""
    return f"{sign}{symbol}{abs(major):,.{places}f} {currency.upper()}"


def format_major(amount_minor: int, currency: str) -> str:
    """The plain major-unit number a person would type back: `34900, "usd"` → `349.00`."""
    places = exponent(currency)
    return f"{to_major(amount_minor, currency):.{places}f}"


def _shown(text: str) -> str:
    """The typed text quoted back in an error, short enough for a modal's error line."""
    return text if len(text) <= 20 else text[:19] + "…"


def parse_major(text: str, currency: str) -> int:
    """Parse a person's major-unit amount into minor units, exactly.

    Accepts plain ASCII decimals (`50`, `50.5`, `1,000.50` with thousands grouped in threes),
    optionally after the request currency's own symbol. Raises ValueError with a message fit to show
    the person: which rule the text broke. Bounded: the text is never longer than
    `MAX_AMOUNT_TEXT` when any arithmetic happens.
    """
    typed = text.strip()
    if len(typed) > MAX_AMOUNT_TEXT:
        raise ValueError(f"That amount is too long ({len(typed)} characters); type it like 1,000.50.")
    code = currency.upper()
    number = _without_symbol(typed, currency)
    if number.startswith("-"):
        raise ValueError("The amount must be greater than zero.")
    match = _PLAIN.fullmatch(number)
    if match is None:
        raise ValueError(_why_not_plain(typed, number))
    whole, fraction = match["whole"].replace(",", ""), match["fraction"] or ""
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS:
        raise ValueError(f"“{_shown(typed)}” is far larger than any {code} amount.")
    places = exponent(currency)
    if len(fraction) > places:
        if places == 0:
            raise ValueError(f"{code} has no decimal places.")
        raise ValueError(f"{code} amounts have at most {places} decimal places.")
    minor = int(whole) * 10**places + int(fraction.ljust(places, "0") or "0")
    if minor <= 0:
        raise ValueError("The amount must be greater than zero.")
    return minor


def _without_symbol(typed: str, currency: str) -> str:
    """The number after the currency's own symbol; any other currency's symbol is refused."""
    own = SYMBOLS.get(currency.lower())
    if own and typed.startswith(own):
        return typed[len(own):].lstrip(" ")
    symbol = typed[0] if typed[:1] in _ANY_SYMBOL else typed[-1] if typed[-1:] in _ANY_SYMBOL else None
    if symbol is None:
        return typed
    if symbol == own:
        raise ValueError(f"Put {own} before the amount, or leave it out.")
    raise ValueError(f"{symbol} is not the symbol of {currency.upper()}: type the amount in "
                     f"{currency.upper()}, as digits.")


def _why_not_plain(typed: str, number: str) -> str:
    """The most specific reason a text is not a plain ASCII decimal."""
    shown = _shown(typed)
    if any(char.isdigit() and not char.isascii() for char in number):
        return f"“{shown}” uses digits other than 0–9; type the amount with the digits 0–9."
    if re.fullmatch(r"[0-9.,]*[eE][+-]?[0-9]+", number):
        return f"“{shown}” is written with an exponent; write the amount out, like 100.00."
    if "_" in number:
        return f"“{shown}” contains “_”; type the amount with digits only, like 1000.50."
    if re.fullmatch(r"[0-9][0-9,]*(\.[0-9]+)?", number) and "," in number:
        return f"“{shown}” has misplaced thousands separators; type it like 1,000.50 or 1000.50."
    return f"“{shown}” is not a number."
