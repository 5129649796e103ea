"""Money in integer minor units, with each currency's own exponent.

Stripe amounts are integers in the currency's smallest unit. People read and type major units, so
conversion in both directions goes through `Decimal` and refuses anything that is not exact.
"""

from decimal import Decimal, InvalidOperation

# Stripe's zero-decimal and three-decimal currencies; every other currency has two decimals.
# https://docs.stripe.com/currencies#special-cases
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "$", "aud": "$", "nzd": "$", "inr": "₹"}


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


def parse_major(text: str, currency: str) -> int:
    """Parse a person's major-unit amount into minor units, exactly.

    Raises ValueError with a message fit to show them: not a number, too many decimals for the
    currency, or not positive.
    """
    cleaned = text.strip().replace(",", "").lstrip("$€£¥")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"“{text.strip()}” is not a number.") from None
    if not value.is_finite():
        raise ValueError(f"“{text.strip()}” is not a number.")
    places = exponent(currency)
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        if places == 0:
            raise ValueError(f"{currency.upper()} has no decimal places.")
        raise ValueError(f"{currency.upper()} amounts have at most {places} decimal places.")
    if minor <= 0:
        raise ValueError("The amount must be greater than zero.")
    return int(minor)
