"""A partner's brand. Colours are validated hex so they can reach CSS safely; text is always escaped."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

hex_colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour such as #1F6FEB.")

PLATFORM_PRODUCT_NAME = "SysGenPro Connect"
# What a partner edits as text on its brand (the logo and favicon are images of their own).
BRAND_TEXT_FIELDS = (
    "product_name",
    "primary_color",
    "accent_color",
    "support_email",
    "support_url",
    "login_message",
    "email_sender_name",
    "email_footer",
)


class Brand(models.Model):
    partner = models.OneToOneField("tenants.Partner", on_delete=models.CASCADE, related_name="brand")
    product_name = models.CharField(max_length=80, default=PLATFORM_PRODUCT_NAME)
    logo = models.ImageField(upload_to="brands/logos/", blank=True)
    favicon = models.ImageField(upload_to="brands/favicons/", blank=True)
    primary_color = models.CharField(max_length=7, default="#1F4FD8", validators=[hex_colour])
    accent_color = models.CharField(max_length=7, default="#0E9F6E", validators=[hex_colour])
    support_email = models.EmailField(blank=True)
    support_url = models.URLField(blank=True)
    login_message = models.CharField(max_length=280, blank=True)
    email_sender_name = models.CharField(max_length=80, blank=True)
    email_footer = models.TextField(max_length=600, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.product_name

    @property
    def sender_name(self) -> str:
        return self.email_sender_name or self.product_name

    @property
    def version(self) -> str:
        """Changes whenever the brand does, so browsers refetch brand.css and the logo."""
        return f"{self.updated_at:%Y%m%d%H%M%S%f}" if self.updated_at else "0"


def platform_brand() -> Brand:
    """The platform's own look, for the operator console and partners without a brand."""
    return Brand(
        product_name=PLATFORM_PRODUCT_NAME,
        primary_color="#1F4FD8",
        accent_color="#0E9F6E",
        support_email="support@sysgenpro.example",
        login_message="",
        email_sender_name=PLATFORM_PRODUCT_NAME,
        email_footer="SysGenPro Connect · Managed integrations for professional-services firms",
    )
