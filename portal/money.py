"""Money as pages show it: the currency's symbol where people know one ("$1,290.00", "NZ$90"), else its code
("CHF 1,290.00")."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "SGD": "S$", "INR": "₹"}


def money_text(amount, currency: str = "", *, places: int = 2) -> str:
    """`amount` in `currency`, rounded to `places` decimals; "—" for no amount."""
    if amount is None or amount == "":
        return "—"
    # Decimal's own rounding (half to even), as the pages have always shown money; the amounts themselves are
    # stored and summed to the cent.
    value = Decimal(amount).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    sign = "-" if value < 0 else ""
    digits = f"{abs(value):,.{places}f}"
    symbol = SYMBOLS.get(currency or "")
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{currency} {digits}".strip()
