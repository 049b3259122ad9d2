"""Branded email: every message sent for a partner carries its name, sender and footer."""

from __future__ import annotations

from email.utils import formataddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from branding.selectors import brand_for_partner, brand_palette


def branded_from_email(brand) -> str:
    return formataddr((brand.sender_name, settings.DEFAULT_FROM_EMAIL))


def branded_email_send(*, partner, to: list[str], subject: str, template: str, context: dict) -> None:
    """Render emails/<template>.txt and .html with the partner's brand and send them."""
    brand = brand_for_partner(partner)
    full_context = {"brand": brand, "palette": brand_palette(brand), **context}
    text = render_to_string(f"emails/{template}.txt", full_context)
    html = render_to_string(f"emails/{template}.html", full_context)
    message = EmailMultiAlternatives(
        subject=f"{subject} · {brand.product_name}",
        body=text,
        from_email=branded_from_email(brand),
        to=to,
        reply_to=[brand.support_email] if brand.support_email else None,
    )
    message.attach_alternative(html, "text/html")
    message.send()
