"""Brand assets served per host: the stylesheet with the partner's colours, its logo and favicon."""

from __future__ import annotations

import mimetypes

from django.http import FileResponse, Http404, HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from branding.selectors import brand_for_request, brand_palette


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
