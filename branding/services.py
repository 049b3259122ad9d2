"""Writes on brands: the partner admin's edits, with uploaded images already checked by branding.images."""

from __future__ import annotations

from django.db import transaction

from branding.images import CheckedImage
from branding.models import PLATFORM_PRODUCT_NAME, Brand

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


def brand_for_editing(*, partner) -> Brand:
    """The partner's brand, created with the platform defaults if it has none yet."""
    brand, _ = Brand.objects.get_or_create(
        partner=partner, defaults={"product_name": f"{partner.name} Connect"[:80] or PLATFORM_PRODUCT_NAME}
    )
    return brand


@transaction.atomic
def brand_update(
    *,
    brand: Brand,
    values: dict,
    logo: CheckedImage | None = None,
    favicon: CheckedImage | None = None,
    logo_clear: bool = False,
    favicon_clear: bool = False,
) -> Brand:
    """Apply the editor's values. Replaced images are deleted from storage once the change is committed."""
    for field in BRAND_TEXT_FIELDS:
        if field in values:
            setattr(brand, field, values[field])
    stem = brand.partner.slug if brand.partner_id else "brand"
    replaced: list[tuple] = []
    for field_name, image, clear in (("logo", logo, logo_clear), ("favicon", favicon, favicon_clear)):
        field = getattr(brand, field_name)
        if image is None and not clear:
            continue
        if field:
            replaced.append((field.storage, field.name))
        if image is not None:
            content = image.as_file(f"{stem}-{field_name}")
            field.save(content.name, content, save=False)
        else:
            setattr(brand, field_name, "")
    brand.full_clean(exclude=["partner", "logo", "favicon"])
    brand.save()
    for storage, name in replaced:
        transaction.on_commit(lambda storage=storage, name=name: storage.delete(name))
    return brand
