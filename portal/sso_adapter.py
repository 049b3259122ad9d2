"""allauth's social accounts as single sign-on: each partner host offers its own and its clients' identity
providers (tenants.SsoConnection, built into allauth apps per request), and only tenants.sso_services decides
whom an IdP signs in: addresses in its proven domains, into its own scope, never anyone else's account."""

from __future__ import annotations

import logging

from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.shortcuts import render

from connectors.http import HttpPolicy, VendorSession
from tenants.models import SsoConnection
from tenants.sso_saml import attribute_values, provider_settings
from tenants.sso_selectors import sso_connections_offered
from tenants.sso_services import SsoRefused, sso_person_admit, sso_secret, sso_sp_private_key

logger = logging.getLogger(__name__)

OIDC = "openid_connect"
SAML = "saml"  # allauth's SAML 2.0 provider (python3-saml); tenants.sso_saml builds its settings


def _claims(extra_data: dict) -> dict:
    """What the IdP said about the person: the ID token's claims, with the userinfo answer over them."""
    return {**(extra_data.get("id_token") or {}), **(extra_data.get("userinfo") or {})}


def refusal_page(request, reason: str, status: int = 403):
    return render(request, "account/sso_refused.html", {"reason": reason}, status=status)


class SsoAdapter(DefaultSocialAccountAdapter):
    def list_apps(self, request, provider=None, client_id=None):
        request = request or context.request
        apps = []
        for connection in sso_connections_offered(getattr(request, "partner", None)):
            kind = SAML if connection.is_saml else OIDC
            if provider not in (None, kind, connection.provider_id):
                continue
            app = _app_for(connection)
            if client_id not in (None, app.client_id):
                continue
            apps.append(app)
        return apps

    def get_requests_session(self):
        # Partners and clients type the issuer URL: the portal reaches it through the connectors' HTTP
        # policy, which refuses private and loopback addresses unless allow-listed.
        policy = HttpPolicy(
            allowed_hosts=frozenset(settings.CONNECTOR_ALLOWED_HOSTS),
            max_retries=1,
            connect_timeout=5,
            read_timeout=settings.SOCIALACCOUNT_REQUESTS_TIMEOUT,
        )
        return VendorSession(policy=policy, vendor="sso")

    def pre_social_login(self, request, sociallogin):
        provider_id = sociallogin.account.provider
        connection = (
            sso_connections_offered(getattr(request, "partner", None))
            .filter(pk=int(provider_id[3:]) if provider_id[3:].isdigit() else 0)
            .first()
        )
        if connection is None:
            raise ImmediateHttpResponse(refusal_page(request, "This sign-on is not offered here.", status=404))
        email, name, groups = (_saml_identity if connection.is_saml else _oidc_identity)(connection, sociallogin)
        try:
            user = sso_person_admit(connection=connection, email=email, name=name, groups=groups)
        except SsoRefused as refused:
            raise ImmediateHttpResponse(refusal_page(request, str(refused))) from refused
        if sociallogin.is_existing:
            if sociallogin.user.pk != user.pk:
                raise ImmediateHttpResponse(
                    refusal_page(
                        request,
                        f"Your {connection.name} identity is linked to another address here: ask your administrator.",
                    )
                )
        else:
            sociallogin.connect(request, user)

    def is_open_for_signup(self, request, sociallogin):
        return False  # every account an IdP opens is made by tenants.sso_services, never by allauth's signup

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        # A SAML response that fails validation (signature, issuer, audience, time, unsolicited) is refused with
        # a plain sentence; python3-saml's reason goes to the log, not to the person.
        if extra_context and extra_context.get("saml_errors"):
            logger.warning("SAML response refused: %s", extra_context.get("saml_last_error_reason"))
            raise ImmediateHttpResponse(
                refusal_page(
                    request,
                    "Your identity provider's answer could not be trusted (it was not signed by the certificate "
                    "saved for it, or was meant for someone else): ask your administrator.",
                )
            )
        return super().on_authentication_error(request, provider, error, exception, extra_context)


def _app_for(connection: SsoConnection):
    """The allauth app for a connection, built per request and never saved: secrets and keys stay encrypted in
    tenants.SsoConnection only."""
    from allauth.socialaccount.models import SocialApp

    if connection.is_saml:
        return SocialApp(
            provider=SAML,
            provider_id=connection.provider_id,
            name=connection.name,
            client_id=connection.provider_id,  # SAML's "organization slug": /accounts/saml/<it>/acs/
            settings=provider_settings(connection=connection, sp_private_key=sso_sp_private_key(connection)),
        )
    return SocialApp(
        provider=OIDC,
        provider_id=connection.provider_id,
        name=connection.name,
        client_id=connection.oauth_client_id,
        secret=sso_secret(connection),
        settings={"server_url": connection.server_url, "scope": ["openid", "profile", "email"]},
    )


def _oidc_identity(connection: SsoConnection, sociallogin) -> tuple[str, str, list[str]]:
    claims = _claims(sociallogin.account.extra_data)
    if claims.get("email_verified") in (False, "false"):
        raise ImmediateHttpResponse(
            refusal_page(
                context.request, f"{connection.name} has not verified your email address: ask your administrator."
            )
        )
    groups = claims.get("groups") or []
    if isinstance(groups, str):
        groups = [groups]
    return claims.get("email") or sociallogin.user.email, claims.get("name") or "", [str(group) for group in groups]


def _saml_identity(connection: SsoConnection, sociallogin) -> tuple[str, str, list[str]]:
    """Email (the mapped attribute, else an email-format NameID, as allauth's provider reads it), name and every
    group from a response python3-saml has already validated: signed by the saved certificate, from the saved
    issuer, for this portal."""
    attributes = sociallogin.account.extra_data or {}
    names = attribute_values(attributes, connection.saml_name_attribute)
    return (
        sociallogin.user.email or "",
        names[0] if names else "",
        attribute_values(attributes, connection.saml_groups_attribute),
    )


def connection_login_url(connection: SsoConnection) -> str:
    from django.urls import reverse

    if connection.is_saml:
        return reverse("saml_login", kwargs={"organization_slug": connection.provider_id})
    return reverse("openid_connect_login", kwargs={"provider_id": connection.provider_id})
