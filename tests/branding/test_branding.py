"""Every page and email on a partner's host carries its brand; nothing a partner types runs."""

import re

import pytest
from django.core import mail

from branding.models import Brand
from tenants import services
from tenants.models import Role
from tests.support import NORTHWIND, PLATFORM, SUMMIT, browser_for

pytestmark = pytest.mark.django_db


def test_brand_colours_reach_css_as_custom_properties(world):
    css = browser_for(host=NORTHWIND).get("/brand.css").content.decode()
    assert "--brand-primary: #0B5CAD;" in css
    assert "--brand-accent: #F59E0B;" in css
    summit_css = browser_for(host=SUMMIT).get("/brand.css").content.decode()
    assert "--brand-primary: #7C3AED;" in summit_css


def test_platform_host_uses_the_default_brand(world):
    page = browser_for(host=PLATFORM).get("/accounts/login/").content.decode()
    assert "SysGenPro Connect" in page
    assert "Northwind" not in page


def test_workspace_page_carries_partner_brand(world):
    page = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND).get("/c/contoso/").content.decode()
    assert "Northwind Connect" in page
    assert 'href="/brand.css?v=' in page
    assert "support@northwind.example" in page


def test_logo_is_served_per_host(world):
    response = browser_for(host=NORTHWIND).get("/brand/logo")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_login_page_shows_the_login_message(world):
    page = browser_for(host=SUMMIT).get("/accounts/login/").content.decode()
    assert "Summit Sync keeps your CRM, ERP and PSA in step." in page


def test_password_reset_email_carries_the_partner_brand(world):
    mail.outbox.clear()
    browser_for(host=NORTHWIND).post("/accounts/password/reset/", {"email": "finance@contoso.localhost"})
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.from_email.startswith("Northwind Advisory <")
    assert "Northwind Connect" in message.subject
    assert "Northwind Advisory · Managed integrations for consultancies" in message.body
    assert "http://northwind.localhost" in message.body
    html = message.alternatives[0][0]
    assert "#0B5CAD" in html and "Northwind Connect" in html


def test_invitation_email_carries_the_partner_brand(world, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.user_invite(
            email="new.person@contoso.localhost", role=Role.CLIENT_VIEWER, client=world.clients["contoso"]
        )
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.from_email.startswith("Northwind Advisory <")
    assert "Contoso Engineering" in message.body
    assert re.search(r"http://northwind\.localhost(:\d+)?/accounts/password/reset/key/", message.body)


def test_script_and_style_in_brand_fields_render_inert(world):
    brand = Brand.objects.get(partner=world.partners["summit"])
    hostile = '<script>alert("x")</script><style>body{display:none}</style>'
    brand.product_name = hostile[:80]
    brand.login_message = hostile
    brand.primary_color = "#0;}*{}"  # bypasses form validation on purpose
    brand.save()
    page = browser_for(host=SUMMIT).get("/accounts/login/").content.decode()
    assert "<script>alert" not in page and "<style>body" not in page
    assert "&lt;script&gt;" in page
    css = browser_for(host=SUMMIT).get("/brand.css").content.decode()
    assert "#0;}" not in css
    assert "--brand-primary: #1F4FD8;" in css
