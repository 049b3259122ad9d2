"""Brand assets served per host (the stylesheet with the partner's colours, its logo and favicon),
and the partner console's brand editor with its live preview."""

from __future__ import annotations

import base64
import mimetypes

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from branding.forms import BrandForm
from branding.models import Brand
from branding.selectors import brand_for_request, brand_palette, contrast_checks
from branding.services import BRAND_TEXT_FIELDS, brand_for_editing, brand_update
from portal.emails import branded_from_email
from tenants.decorators import partner_role_required
from tenants.models import Role


@require_GET
def brand_css(request):
    brand = brand_for_request(request)
    css = render_to_string("branding/brand.css", brand_palette(brand))
    response = HttpResponse(css, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


def _serve_image(field):
    if not field:
        raise Http404("No image")
    try:
        handle = field.open("rb")
    except FileNotFoundError as error:
        raise Http404("Image missing") from error
    content_type = mimetypes.guess_type(field.name)[0] or "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def brand_logo(request):
    return _serve_image(brand_for_request(request).logo)


@require_GET
def brand_favicon(request):
    brand = brand_for_request(request)
    return _serve_image(brand.favicon or brand.logo)


# --- The partner console's brand editor ----------------------------------------------------------


def _preview_context(request, form: BrandForm, brand: Brand) -> dict:
    preview = form.preview_brand() if form.is_bound else brand
    palette = brand_palette(preview)
    logo_src = favicon_src = None
    cleaned = getattr(form, "cleaned_data", {}) if form.is_bound else {}
    for name in ("logo", "favicon"):
        checked = cleaned.get(name) if name not in form.errors else None
        if checked is not None:
            # Not saved yet: show the checked re-encoding inline (the CSP allows data: images).
            source = f"data:{checked.content_type};base64,{base64.b64encode(checked.content).decode()}"
        elif cleaned.get(f"{name}_clear"):
            source = None
        elif getattr(brand, name):
            source = f"{reverse('brand_' + name)}?v={brand.version}"
        else:
            source = None
        if name == "logo":
            logo_src = source
        else:
            favicon_src = source
    first_client = request.partner.clients.order_by("name").first()
    return {
        "preview": preview,
        "palette": palette,
        "checks": contrast_checks(palette["primary"], palette["accent"]),
        "logo_src": logo_src,
        "favicon_src": favicon_src or logo_src,
        "sample_client": first_client.name if first_client else "Contoso Engineering",
        "preview_css": reverse("brand_preview_css")
        + f"?primary={palette['primary'][1:]}&accent={palette['accent'][1:]}",
        "unsaved": form.is_bound,
        "sender": branded_from_email(preview),
    }


@partner_role_required(Role.PARTNER_ADMIN)
def brand_editor(request):
    brand = brand_for_editing(partner=request.partner)
    form = BrandForm(request.POST or None, request.FILES or None, instance=brand)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        brand_update(
            brand=brand,
            values={field: data[field] for field in BRAND_TEXT_FIELDS},
            logo=data.get("logo"),
            favicon=data.get("favicon"),
            logo_clear=data.get("logo_clear", False),
            favicon_clear=data.get("favicon_clear", False),
            actor=request.user,
        )
        messages.success(request, "Brand saved: every page and email on your portal uses it now.")
        return redirect(reverse("brand_editor"))
    # A form that failed shows its errors beside the preview of what was typed.
    context = {"form": form, "section": "brand", **_preview_context(request, form, brand)}
    status = 422 if form.is_bound and form.errors else 200
    return render(request, "branding/brand_editor.html", context, status=status)


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def brand_preview(request):
    """The preview of unsaved values, re-rendered by HTMX as the partner types."""
    brand = brand_for_editing(partner=request.partner)
    form = BrandForm(request.POST, request.FILES or None, instance=brand)
    form.is_valid()
    context = {"form": form, **_preview_context(request, form, brand)}
    return render(request, "branding/brand_editor.html#preview", context)


@require_GET
@partner_role_required(Role.PARTNER_ADMIN)
def brand_preview_css(request):
    """The preview's colours as CSS custom properties scoped to the preview (inline styles are forbidden)."""
    primary = "#" + request.GET.get("primary", "")
    accent = "#" + request.GET.get("accent", "")
    palette = brand_palette(Brand(primary_color=primary, accent_color=accent))
    css = render_to_string("branding/preview.css", palette)
    response = HttpResponse(css, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "private, max-age=86400"
    return response
