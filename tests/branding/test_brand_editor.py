"""The brand editor: live preview, contrast check, uploads judged by their decoded content, and nothing
a partner types ever running in a page or an email."""

import io

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone
from PIL import Image

from branding.models import BRAND_TEXT_FIELDS, Brand
from branding.services import brand_update
from tenants import services
from tenants.models import Client, Role
from tests.branding.imagefiles import SVG_WITH_SCRIPT, image_bytes, noisy_png, upload
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    """Uploads of these tests go to a throwaway folder; the demo's own logos stay where they are."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def admin(world):
    return browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)


@pytest.fixture
def brand(world):
    return Brand.objects.get(partner=world.partners["northwind"])


def form_data(brand: Brand, **changes) -> dict:
    data = {field: getattr(brand, field) for field in BRAND_TEXT_FIELDS}
    data.update(changes)
    return data


def test_the_editor_shows_the_form_beside_a_live_preview(admin):
    page = admin.get("/partner/brand/").content.decode()
    assert 'hx-post="/partner/brand/preview"' in page and 'hx-target="#brand-preview"' in page
    assert 'id="brand-preview"' in page and "/partner/brand/preview.css?primary=0B5CAD&amp;accent=F59E0B" in page
    for frame in ("Login page", "Client workspace", "Invitation email"):
        assert f"<figcaption>{frame}</figcaption>" in page
    assert "Welcome to Northwind Connect" in page
    assert 'type="color" name="primary_color" value="#0B5CAD"' in page


def test_only_partner_admins_edit_the_brand(world):
    for email in ("engineer@northwind.localhost", "admin@contoso.localhost"):
        browser = browser_for(world.user(email), host=NORTHWIND)
        assert browser.get("/partner/brand/").status_code == 403
        assert browser.post("/partner/brand/preview", {}).status_code == 403
        assert browser.get("/partner/brand/preview.css").status_code == 403


def test_saving_the_brand_changes_every_page_on_the_host(admin, brand):
    response = admin.post(
        "/partner/brand/",
        form_data(brand, product_name="Northwind Flow", primary_color="#0f766e", login_message="Hello, clients."),
    )
    assert response.status_code == 302
    brand.refresh_from_db()
    assert brand.product_name == "Northwind Flow" and brand.primary_color == "#0F766E"
    assert "--brand-primary: #0F766E;" in browser_for(host=NORTHWIND).get("/brand.css").content.decode()
    login = browser_for(host=NORTHWIND).get("/accounts/login/").content.decode()
    assert "Northwind Flow" in login and "Hello, clients." in login


def test_a_primary_colour_unreadable_on_white_is_refused_with_a_darker_suggestion(admin, brand):
    response = admin.post("/partner/brand/", form_data(brand, primary_color="#F59E0B"))
    assert response.status_code == 422
    page = response.content.decode()
    assert "Links and highlights in the primary colour on white: 2.1:1, below the 4.5:1 WCAG AA asks for." in page
    suggestion = page.split("A darker shade such as ", 1)[1][:7]
    brand.refresh_from_db()
    assert brand.primary_color == "#0B5CAD"
    assert admin.post("/partner/brand/", form_data(brand, primary_color=suggestion)).status_code == 302


def test_an_uploaded_logo_is_re_encoded_and_served_by_its_real_type(admin, brand):
    data = {**form_data(brand), "logo": upload("logo.png", image_bytes("PNG", (300, 100)))}
    assert admin.post("/partner/brand/", data).status_code == 302
    brand.refresh_from_db()
    assert brand.logo.name.startswith("brands/logos/northwind-logo-") and brand.logo.name.endswith(".png")
    served = browser_for(host=NORTHWIND).get("/brand/logo")
    content = b"".join(served.streaming_content)
    assert served["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(content)).size == (300, 100)


def test_a_jpeg_named_png_is_kept_as_the_jpeg_it_is(admin, brand):
    data = {**form_data(brand), "favicon": upload("icon.png", image_bytes("JPEG", (64, 64)))}
    assert admin.post("/partner/brand/", data).status_code == 302
    brand.refresh_from_db()
    assert brand.favicon.name.endswith(".jpg")
    assert browser_for(host=NORTHWIND).get("/brand/favicon")["Content-Type"] == "image/jpeg"


def _truncated_png() -> bytes:
    whole = image_bytes("PNG", (400, 400), "#123456")
    return whole[: len(whole) // 2]


REFUSED_UPLOADS = [
    (
        "logo",
        "notes.png",
        b"These are my notes, not a picture.\n" * 20,
        "text/plain",
        "is not a PNG, JPEG or WebP image",
    ),
    ("logo", "logo.svg", SVG_WITH_SCRIPT, "image/svg+xml", "logo.svg is an SVG image. SVG files can carry scripts"),
    ("logo", "logo.png", SVG_WITH_SCRIPT, "image/png", "logo.png is an SVG image"),
    ("logo", "anim.png", image_bytes("GIF", (64, 64)), "image/png", "anim.png is a GIF image"),
    (
        "logo",
        "huge.png",
        image_bytes("PNG", (3000, 3000)),
        "image/png",
        "3000×3000 pixels; the logo limit is 2048×2048",
    ),
    ("logo", "broken.png", _truncated_png(), "image/png", "broken.png looks like a PNG image but is damaged"),
    ("favicon", "icon.png", image_bytes("PNG", (600, 600)), "image/png", "the favicon limit is 512×512"),
    ("logo", "tiny.png", image_bytes("PNG", (8, 8)), "image/png", "use at least 16×16"),
]


@pytest.mark.parametrize(("field", "name", "content", "content_type", "reason"), REFUSED_UPLOADS)
def test_uploads_that_are_not_safe_images_are_refused_with_a_reason(
    admin, brand, field, name, content, content_type, reason
):
    before = brand.logo.name, brand.favicon.name
    response = admin.post("/partner/brand/", {**form_data(brand), field: upload(name, content, content_type)})
    assert response.status_code == 422
    assert reason in response.content.decode()
    brand.refresh_from_db()
    assert (brand.logo.name, brand.favicon.name) == before


def test_an_oversized_upload_is_refused_before_it_is_decoded(admin, brand):
    big = noisy_png((700, 700))
    assert len(big) > 1024 * 1024
    response = admin.post("/partner/brand/", {**form_data(brand), "logo": upload("photo.png", big)})
    assert response.status_code == 422
    assert "the logo limit is 1 MB" in response.content.decode()


def test_the_preview_shows_unsaved_values_and_saves_nothing(admin, brand):
    response = admin.post(
        "/partner/brand/preview",
        {
            **form_data(brand, product_name="Tomorrow's Name", primary_color="#7C2D12"),
            "logo": upload("new.webp", image_bytes("WEBP", (120, 40))),
        },
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<section id="brand-preview"')
    assert "Tomorrow&#x27;s Name" in page and "Not saved yet" in page
    assert "/partner/brand/preview.css?primary=7C2D12&amp;accent=F59E0B" in page
    assert 'src="data:image/webp;base64,' in page
    brand.refresh_from_db()
    assert brand.product_name == "Northwind Connect" and brand.primary_color == "#0B5CAD"


def test_the_preview_lists_what_must_be_fixed_before_saving(admin, brand):
    page = admin.post(
        "/partner/brand/preview",
        {**form_data(brand, primary_color="#FDE68A"), "logo": upload("x.svg", SVG_WITH_SCRIPT, "image/svg+xml")},
    ).content.decode()
    assert "Fix these before saving:" in page
    assert "x.svg is an SVG image" in page and "Too low" in page
    assert "<script type" not in page and "onload=" not in page


def test_preview_colours_reach_css_only_as_validated_hex(admin):
    css = admin.get("/partner/brand/preview.css", {"primary": "0F766E", "accent": "B45309"}).content.decode()
    assert "--brand-primary: #0F766E;" in css and "--brand-accent: #B45309;" in css
    hostile = admin.get("/partner/brand/preview.css", {"primary": "0;}body{display:none", "accent": "zz"})
    css = hostile.content.decode()
    assert "body{" not in css and "--brand-primary: #1F4FD8;" in css


def test_the_logo_can_be_removed(admin, brand):
    admin.post("/partner/brand/", {**form_data(brand), "logo": upload("logo.png", image_bytes())})
    brand.refresh_from_db()
    assert brand.logo
    admin.post("/partner/brand/", {**form_data(brand), "logo_clear": "on"})
    brand.refresh_from_db()
    assert not brand.logo
    assert browser_for(host=NORTHWIND).get("/brand/logo").status_code == 404


def test_links_and_addresses_must_be_what_they_claim(admin, brand):
    response = admin.post(
        "/partner/brand/",
        form_data(brand, support_url="javascript:alert(1)", support_email="not-an-address", product_name="A\r\nBcc: x"),
    )
    page = response.content.decode()
    assert response.status_code == 422
    assert "Enter a valid URL." in page and "Enter a valid email address." in page and "Use a single line" in page
    with pytest.raises(ValidationError):
        brand_update(brand=brand, values={"support_url": "javascript:alert(1)"}, actor=None)


HOSTILE = "<script>alert(1)</script><style>*{display:none}</style><img src=x onerror=alert(2)>"
HOSTILE_NAME = "<script>alert(3)</script><img src=x onerror=alert(4)>"


def assert_inert(html: str, where: str) -> None:
    for raw in ("<script>alert", "<style>*{", "<img src=x"):
        assert raw not in html, f"{raw!r} reached {where} unescaped"


def test_script_and_style_through_every_brand_field_and_client_name_render_inert(
    world, admin, brand, django_capture_on_commit_callbacks
):
    response = admin.post(
        "/partner/brand/",
        form_data(
            brand,
            product_name=HOSTILE_NAME,
            login_message=HOSTILE,
            email_sender_name=HOSTILE_NAME,
            email_footer=HOSTILE + "\n" + HOSTILE,
            support_email="help@northwind.example",
        ),
    )
    assert response.status_code == 302
    plan = world.partners["northwind"].plans.first()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        created = admin.post(
            "/partner/clients/new",
            {"name": HOSTILE_NAME, "slug": "hostile", "plan": plan.pk, "admin_email": "owner@hostile.example"},
        )
    assert created.status_code == 302
    hostile = Client.objects.get(partner=world.partners["northwind"], slug="hostile")
    services.usage_record_upsert(client=hostile, month=timezone.localdate(), records_synced=10, runs=1)

    pages = {
        "login page": browser_for(host=NORTHWIND).get("/accounts/login/"),
        "partner home": admin.get("/partner/"),
        "client health": admin.get("/partner/clients/hostile/"),
        "revenue": admin.get("/partner/revenue/"),
        "statement": admin.get("/partner/revenue/hostile/"),
        "team": admin.get("/partner/team/"),
        "brand editor": admin.get("/partner/brand/"),
        "preview": admin.post("/partner/brand/preview", form_data(brand), HTTP_HX_REQUEST="true"),
        "workspace": admin.get("/c/hostile/"),
        "workspace of another client": browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND).get(
            "/c/contoso/"
        ),
    }
    for where, page in pages.items():
        assert page.status_code == 200, where
        html = page.content.decode()
        assert_inert(html, where)
        assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html, f"the product name is not shown escaped on {where}"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["login page"].content.decode()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert_inert(message.alternatives[0][0], "the invitation email")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in message.alternatives[0][0]
    assert "\n" not in message.subject and "\n" not in message.from_email

    with django_capture_on_commit_callbacks(execute=True):  # a staff invitation carries the same brand
        services.user_invite(
            email="someone@northwind.example", role=Role.PARTNER_STAFF, partner=world.partners["northwind"]
        )
    assert_inert(mail.outbox[-1].alternatives[0][0], "the staff invitation")
