"""Formatting for the partner console: money in its currency, ages, usage."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

from portal.money import money_text

register = template.Library()


@register.filter
def money(amount, currency: str = "") -> str:
    """1290 + "USD" -> "$1,290.00"; currencies without a symbol here read "CHF 1,290.00"."""
    return money_text(amount, currency)


@register.filter
def age(delta: timedelta | None) -> str:
    """A duration the way people say it: 25 min, 3 h, 2 d 4 h."""
    if delta is None:
        return "—"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes and hours < 6 else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def records(count) -> str:
    """12345 -> 12,345: always exact, as statements are billed on it."""
    if count is None:
        return "—"
    return intcomma(int(count))


@register.filter
def hours(value) -> str:
    """Decimal("6.50") -> "6.5", Decimal("3.00") -> "3": hours as a person writes them, never rounded."""
    if value is None or value == "":
        return "—"
    text = f"{Decimal(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@register.filter
def bar_step(percent) -> int:
    """A usage percentage rounded to the 5% steps the stylesheet draws (no inline styles under the CSP)."""
    if percent is None:
        return 0
    return max(0, min(100, 5 * round(float(percent) / 5)))
