"""Branded email: every message sent for a partner carries its name, sender and footer."""

from __future__ import annotations

from email.utils import formataddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from branding.selectors import brand_for_partner, brand_palette


def sender_address(partner_id: int | None) -> str:
    """DEFAULT_FROM_EMAIL when the operator set one, else no-reply@ the partner's primary domain
    (the platform's first host for the operator's own mail): never a name the partner did not choose."""
    if settings.DEFAULT_FROM_EMAIL:
        return settings.DEFAULT_FROM_EMAIL
    from tenants.models import PartnerDomain

    domains = PartnerDomain.objects.serving().filter(partner_id=partner_id).order_by("-is_primary", "domain")
    host = domains.values_list("domain", flat=True).first() if partner_id else None
    return f"no-reply@{host or settings.PLATFORM_HOSTS[0]}"


def branded_from_email(brand) -> str:
    return formataddr((brand.sender_name, sender_address(brand.partner_id)))


def brand_logo_url(brand) -> str:
    """Where a mail client fetches the brand's logo: the partner's own host, so it works from any process
    (a worker has no request to take a host from)."""
    if not brand.logo or brand.partner_id is None:
        return ""
    from tenants.services import partner_base_url

    return f"{partner_base_url(brand.partner)}/brand/logo?v={brand.version}"


def branded_email_send(*, partner, to: list[str], subject: str, template: str, context: dict) -> None:
    """Render emails/<template>.txt and .html with the partner's brand and send them."""
    brand = brand_for_partner(partner)
    full_context = {"brand": brand, "palette": brand_palette(brand), "logo_url": brand_logo_url(brand), **context}
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
