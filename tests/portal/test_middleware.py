"""The portal's own middleware: the request size cap in front of every view."""

import pytest

from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


def test_a_body_over_the_cap_is_refused_before_any_view_reads_it(world, settings):
    settings.REQUEST_MAX_BYTES = 64 * 1024
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    huge = b"\x89PNG" + b"\0" * (settings.REQUEST_MAX_BYTES + 1)
    response = admin.post("/partner/brand/", data=huge, content_type="application/octet-stream")
    assert response.status_code == 413
    assert "larger than the 0.0625 MB the portal accepts" in response.content.decode()
    assert "Content-Security-Policy" in response  # still a response of the product
    small = admin.post("/partner/brand/", {"product_name": ""})
    assert small.status_code != 413


def test_the_default_cap_leaves_room_for_a_brand_with_its_largest_images(settings):
    assert settings.REQUEST_MAX_BYTES >= 2 * (1024 * 1024 + 256 * 1024)


def test_nul_characters_in_the_path_or_parameters_are_refused_before_any_view(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    assert admin.get("/c/contoso/exceptions/", {"error_code": "A\x00B"}).status_code == 400
    assert admin.get("/partner/", {"q": "\x00"}).status_code == 400
    assert admin.post("/c/contoso/exceptions/bulk", {"action": "ignore", "reason": "why\x00"}).status_code == 400
    assert (
        browser_for(host=NORTHWIND).post("/hooks/contoso/%00", b"[]", content_type="application/json").status_code
        == 400
    )
    assert admin.get("/c/contoso/exceptions/", {"error_code": "PROJECT_NOT_IN_TARGET"}).status_code == 200
