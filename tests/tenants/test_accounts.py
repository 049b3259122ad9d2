"""Accounts: email + password, TOTP second factor, invite-only, password reset by email."""

import pytest
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core import mail

from tenants.demo import DEMO_PASSWORD
from tenants.models import Membership, Role, User
from tests.support import NORTHWIND, PLATFORM, SUMMIT, browser_for, user_who_can_sign_in

pytestmark = pytest.mark.django_db


def test_login_with_email_and_password_lands_on_the_workspace(world):
    browser = browser_for(host=NORTHWIND)
    response = browser.post(
        "/accounts/login/", {"login": "finance@contoso.localhost", "password": DEMO_PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/c/contoso/"
    assert "Frank Finance" in response.content.decode()


def test_wrong_password_re_renders_with_a_message(world):
    response = browser_for(host=NORTHWIND).post(
        "/accounts/login/", {"login": "finance@contoso.localhost", "password": "nope"}
    )
    assert response.status_code == 200
    assert "not correct" in response.content.decode()


def test_totp_is_required_once_activated(world):
    user = user_who_can_sign_in("mfa.user@contoso.localhost", "a-long-passphrase-1")
    Membership.objects.create(user=user, role=Role.CLIENT_VIEWER, client=world.clients["contoso"])
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    browser = browser_for(host=NORTHWIND)
    response = browser.post("/accounts/login/", {"login": user.email, "password": "a-long-passphrase-1"})
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/authenticate/"
    assert browser.get("/c/contoso/").status_code == 302  # not in yet
    code = format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))
    response = browser.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 302
    assert browser.get("/c/contoso/").status_code == 200


def test_signup_is_closed(world):
    response = browser_for(host=NORTHWIND).post(
        "/accounts/signup/", {"email": "x@y.z", "password1": "Aa1!aaaaaaaa", "password2": "Aa1!aaaaaaaa"}
    )
    assert not User.objects.filter(email="x@y.z").exists()
    assert response.status_code in (200, 403)


def test_password_reset_sends_one_branded_email_with_a_working_link(world):
    mail.outbox.clear()
    browser = browser_for(host=NORTHWIND)
    browser.post("/accounts/password/reset/", {"email": "viewer@contoso.localhost"})
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/password/reset/key/" in line).strip()
    path = link.split("northwind.localhost", 1)[1].split("/", 1)[1]
    response = browser.get("/" + path, follow=True)
    assert response.status_code == 200
    assert "password1" in response.content.decode()


def test_operator_creates_a_partner_with_host_brand_and_invited_admin(world, django_capture_on_commit_callbacks):
    operator = browser_for(world.user("operator@sysgenpro.localhost"), host=PLATFORM)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(
            "/platform/partners/new",
            {
                "name": "Bayside IT",
                "slug": "bayside",
                "domain": "bayside.localhost",
                "admin_email": "boss@bayside.localhost",
            },
        )
    assert response.status_code == 302
    assert "Bayside IT Connect" in browser_for(host="bayside.localhost").get("/accounts/login/").content.decode()
    assert mail.outbox[0].to == ["boss@bayside.localhost"]
    assert mail.outbox[0].from_email.startswith("Bayside IT <")


def test_bad_partner_form_re_renders_with_the_reason(world):
    operator = browser_for(world.user("operator@sysgenpro.localhost"), host=PLATFORM)
    response = operator.post(
        "/platform/partners/new",
        {"name": "Copy", "slug": "northwind", "domain": "northwind.localhost", "admin_email": "not-an-email"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "A partner already uses this id." in body and "This host already serves a partner." in body
    assert "Enter a valid email address." in body


def test_failed_logins_behind_the_proxy_lock_out_their_client_not_everyone(world, settings):
    """Ten bad logins a minute lock an address out. Behind the production proxy every request comes
    from the proxy's address: the client's must be read from X-Forwarded-For, or one attacker locks
    every user out."""
    from django.core.cache import cache

    from tests.support import production_settings

    settings.ALLAUTH_TRUSTED_PROXY_COUNT = production_settings("ALLAUTH_TRUSTED_PROXY_COUNT")[
        "ALLAUTH_TRUSTED_PROXY_COUNT"
    ]
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
    cache.clear()
    try:
        for attempt in range(10):
            browser_for(host=NORTHWIND).post(
                "/accounts/login/",
                {"login": f"guess{attempt}@contoso.localhost", "password": "wrong"},
                HTTP_X_FORWARDED_FOR="203.0.113.5",
            )
        good = {"login": "finance@contoso.localhost", "password": DEMO_PASSWORD}
        attacker = browser_for(host=NORTHWIND).post("/accounts/login/", good, HTTP_X_FORWARDED_FOR="203.0.113.5")
        assert attacker.status_code == 200 and "Too many failed login attempts" in attacker.content.decode()
        colleague = browser_for(host=NORTHWIND).post("/accounts/login/", good, HTTP_X_FORWARDED_FOR="198.51.100.7")
        assert colleague.status_code == 302
    finally:
        cache.clear()


def reset_link(message) -> str:
    return next(line for line in message.body.splitlines() if "/accounts/password/reset/key/" in line).strip()


def test_a_reset_asked_on_another_partners_host_goes_to_the_accounts_own_host_and_brand(world):
    """Summit controls summit.localhost (and its custom domains): a reset link for Northwind's admin
    must never point there, nor its key work there."""
    mail.outbox.clear()
    browser_for(host=SUMMIT).post("/accounts/password/reset/", {"email": "admin@northwind.localhost"})
    (message,) = mail.outbox
    assert message.to == ["admin@northwind.localhost"]
    assert message.from_email.startswith("Northwind Advisory <") and "Northwind Connect" in message.subject
    link = reset_link(message)
    assert link.startswith(f"http://{NORTHWIND}:") or link.startswith(f"http://{NORTHWIND}/")
    assert "summit" not in message.body.lower()
    path = "/" + link.split(NORTHWIND, 1)[1].split("/", 1)[1]
    on_summit = browser_for(host=SUMMIT).get(path, follow=True)
    assert "password1" not in on_summit.content.decode()
    on_northwind = browser_for(host=NORTHWIND).get(path, follow=True)
    assert "password1" in on_northwind.content.decode()


def test_the_operators_reset_goes_to_the_platform_host_in_the_platform_brand(world):
    mail.outbox.clear()
    browser_for(host=NORTHWIND).post("/accounts/password/reset/", {"email": "operator@sysgenpro.localhost"})
    (message,) = mail.outbox
    assert "SysGenPro Connect" in message.subject and "Northwind" not in message.body
    path = "/" + reset_link(message).split(PLATFORM, 1)[1].split("/", 1)[1]
    assert "password1" not in browser_for(host=NORTHWIND).get(path, follow=True).content.decode()
    assert "password1" in browser_for(host=PLATFORM).get(path, follow=True).content.decode()


def test_choosing_a_password_through_the_emailed_link_verifies_the_address(world):
    from allauth.account.models import EmailAddress

    user = User.objects.create_user("unconfirmed@contoso.localhost", "an-old-passphrase-1")
    Membership.objects.create(user=user, role=Role.CLIENT_VIEWER, client=world.clients["contoso"])
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=False)
    mail.outbox.clear()
    browser = browser_for(host=NORTHWIND)
    browser.post("/accounts/password/reset/", {"email": user.email})
    path = "/" + reset_link(mail.outbox[0]).split(NORTHWIND, 1)[1].split("/", 1)[1]
    form = browser.get(path, follow=True)
    response = browser.post(
        form.redirect_chain[-1][0], {"password1": "a-new-passphrase-2", "password2": "a-new-passphrase-2"}
    )
    assert response.status_code == 302
    assert EmailAddress.objects.get(user=user, email=user.email).verified
    signed_in = browser_for(host=NORTHWIND).post(
        "/accounts/login/", {"login": user.email, "password": "a-new-passphrase-2"}, follow=True
    )
    assert signed_in.redirect_chain[-1][0] == "/c/contoso/"


def test_an_unverified_address_cannot_sign_in(world):
    user = User.objects.create_user("never.confirmed@contoso.localhost", "a-long-passphrase-1")
    Membership.objects.create(user=user, role=Role.CLIENT_VIEWER, client=world.clients["contoso"])
    response = browser_for(host=NORTHWIND).post(
        "/accounts/login/", {"login": user.email, "password": "a-long-passphrase-1"}
    )
    assert response["Location"] == "/accounts/confirm-email/"
