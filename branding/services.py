"""Writes on brands: the partner admin's edits, with uploaded images already checked by branding.images."""

from __future__ import annotations

from django.db import transaction

from branding.images import CheckedImage
from branding.models import BRAND_TEXT_FIELDS, PLATFORM_PRODUCT_NAME, Brand
from tenants.services import partner_audit_record


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
    actor,
    logo: CheckedImage | None = None,
    favicon: CheckedImage | None = None,
    logo_clear: bool = False,
    favicon_clear: bool = False,
) -> Brand:
    """Apply the editor's values. Replaced images are deleted from storage once the change is committed.

    Every page and email of the partner's clients carries the brand: the change is audited with the values it
    replaced, and which images were replaced or removed.
    """
    # As stored: the editor's form has already written the new values onto `brand` while validating them.
    stored = Brand.objects.filter(pk=brand.pk).first() if brand.pk else None
    before = {field: getattr(stored or brand, field) for field in BRAND_TEXT_FIELDS}
    for field in BRAND_TEXT_FIELDS:
        if field in values:
            setattr(brand, field, values[field])
    stem = brand.partner.slug if brand.partner_id else "brand"
    replaced: list[tuple] = []
    images: dict[str, str] = {}
    for field_name, image, clear in (("logo", logo, logo_clear), ("favicon", favicon, favicon_clear)):
        field = getattr(brand, field_name)
        if image is None and not clear:
            continue
        if image is not None:
            images[field_name] = "replaced" if field else "added"
        elif field:
            images[field_name] = "removed"
        if field:
            replaced.append((field.storage, field.name))
        if image is not None:
            content = image.as_file(f"{stem}-{field_name}")
            field.save(content.name, content, save=False)
        else:
            setattr(brand, field_name, "")
    brand.full_clean(exclude=["partner", "logo", "favicon"])
    brand.save()
    changed = [field for field in BRAND_TEXT_FIELDS if getattr(brand, field) != before[field]]
    if brand.partner_id and (changed or images):
        labels = [Brand._meta.get_field(field).verbose_name for field in changed]
        labels += [f"{name} {done}" for name, done in images.items()]
        partner_audit_record(
            partner=brand.partner,
            actor=actor,
            action="brand.updated",
            target_type="brand",
            target_id=brand.pk,
            summary=f"Brand changed: {', '.join(str(label) for label in labels)}",
            before={field: before[field] for field in changed} or None,
            after={**{field: getattr(brand, field) for field in changed}, **images},
        )
    for storage, name in replaced:
        transaction.on_commit(lambda storage=storage, name=name: storage.delete(name))
    return brand
