"""allauth's social accounts as single sign-on: each partner host offers its own and its clients' identity
providers (tenants.SsoConnection, built into allauth apps per request), and only tenants.sso_services decides
whom an IdP signs in: addresses in its proven domains, into its own scope, never anyone else's account."""

from __future__ import annotations

from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.shortcuts import render

from connectors.http import HttpPolicy, VendorSession
from tenants.models import SsoConnection
from tenants.sso_selectors import sso_connections_offered
from tenants.sso_services import SsoRefused, sso_person_admit, sso_secret

PROVIDER = "openid_connect"


def _claims(extra_data: dict) -> dict:
    """What the IdP said about the person: the ID token's claims, with the userinfo answer over them."""
    return {**(extra_data.get("id_token") or {}), **(extra_data.get("userinfo") or {})}


def refusal_page(request, reason: str, status: int = 403):
    return render(request, "account/sso_refused.html", {"reason": reason}, status=status)


class SsoAdapter(DefaultSocialAccountAdapter):
    def list_apps(self, request, provider=None, client_id=None):
        from allauth.socialaccount.models import SocialApp

        request = request or context.request
        apps = []
        for connection in sso_connections_offered(getattr(request, "partner", None)):
            if provider not in (None, PROVIDER, connection.provider_id):
                continue
            if client_id not in (None, connection.oauth_client_id):
                continue
            # Built per request and never saved: the secret stays encrypted in tenants.SsoConnection only.
            apps.append(
                SocialApp(
                    provider=PROVIDER,
                    provider_id=connection.provider_id,
                    name=connection.name,
                    client_id=connection.oauth_client_id,
                    secret=sso_secret(connection),
                    settings={"server_url": connection.server_url, "scope": ["openid", "profile", "email"]},
                )
            )
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
        claims = _claims(sociallogin.account.extra_data)
        if claims.get("email_verified") in (False, "false"):
            raise ImmediateHttpResponse(
                refusal_page(request, f"{connection.name} has not verified your email address: ask your administrator.")
            )
        groups = claims.get("groups") or []
        if isinstance(groups, str):
            groups = [groups]
        try:
            user = sso_person_admit(
                connection=connection,
                email=claims.get("email") or sociallogin.user.email,
                name=claims.get("name") or "",
                groups=[str(group) for group in groups],
            )
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


def connection_login_url(connection: SsoConnection) -> str:
    from django.urls import reverse

    return reverse("openid_connect_login", kwargs={"provider_id": connection.provider_id})
