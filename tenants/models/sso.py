"""Single sign-on records (public schema): a partner's or client's identity provider, and the email domains it proves."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from tenants.models.accounts import Role
from tenants.models.clients import Client
from tenants.models.partners import Partner, domain_verification_token


class SsoConnection(models.Model):
    """An identity provider a partner's staff (no client) or one client's people sign in through.

    It is offered only on its partner's hosts, admits only addresses in its proven domains, and grants
    roles only in its own scope: an IdP configured for one partner or client never reaches another.
    """

    class Protocol(models.TextChoices):
        OIDC = "oidc", "OpenID Connect"
        SAML = "saml", "SAML 2.0"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="sso_connections")
    client = models.OneToOneField(
        Client, on_delete=models.CASCADE, null=True, blank=True, related_name="sso_connection"
    )
    protocol = models.CharField(max_length=8, choices=Protocol.choices, default=Protocol.OIDC)
    name = models.CharField(max_length=80, help_text="Shown on the sign-in button, e.g. “Contoso Entra ID”.")
    # OpenID Connect: the issuer and the portal's registration there.
    server_url = models.URLField("issuer URL", max_length=300, blank=True)
    oauth_client_id = models.CharField("client ID", max_length=200, blank=True)
    # portal.crypto; write-only. OIDC: the client secret; SAML: the portal's own signing key for this IdP.
    encrypted_secret = models.BinaryField(editable=False, default=bytes)
    # SAML 2.0: the IdP as its metadata describes it (read from metadata_url or an uploaded file when given,
    # so sign-in never waits on the IdP's metadata), and which of its attributes say who the person is.
    saml_metadata_url = models.URLField("IdP metadata URL", max_length=500, blank=True)
    saml_entity_id = models.CharField("IdP entity ID", max_length=500, blank=True)
    saml_sso_url = models.URLField("IdP sign-on URL", max_length=500, blank=True)
    saml_x509cert = models.TextField("IdP signing certificate", blank=True)  # public: PEM body, no secret
    saml_sp_x509cert = models.TextField(blank=True, editable=False)  # the portal's public half, in its metadata
    saml_email_attribute = models.CharField("email attribute", max_length=300, blank=True)
    saml_name_attribute = models.CharField("name attribute", max_length=300, blank=True)
    saml_groups_attribute = models.CharField("groups attribute", max_length=300, blank=True)
    default_role = models.CharField(max_length=20, choices=Role.choices)
    # IdP group name -> Role value; the first group of a person's that is mapped decides, else default_role.
    group_roles = models.JSONField(default=dict, blank=True)
    sso_required = models.BooleanField(
        "single sign-on required", default=False, help_text="People of these domains cannot sign in with a password."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["partner", "client", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["partner"], condition=Q(client__isnull=True), name="one_partner_sso"),
        ]

    def __str__(self):
        return self.name

    @property
    def provider_id(self) -> str:
        """The id allauth routes by: /accounts/oidc/<provider_id>/login/, or /accounts/saml/<provider_id>/login/
        (SAML's "organization slug")."""
        return f"sso{self.pk}"

    @property
    def is_saml(self) -> bool:
        return self.protocol == self.Protocol.SAML

    def role_for_groups(self, groups) -> str:
        for group in groups or ():
            role = self.group_roles.get(str(group))
            if role:
                return role
        return self.default_role


class SsoDomain(models.Model):
    """An email domain an SsoConnection admits, once a DNS TXT record proves its owner controls it."""

    connection = models.ForeignKey(SsoConnection, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253)
    verification_token = models.CharField(max_length=64, default=domain_verification_token, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Brand-neutral, like custom domains' records (partners hand them to their clients' DNS people).
    TXT_PREFIX = "_portal-sso"
    TXT_VALUE_PREFIX = "portal-sso-verify="

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "domain"], name="sso_domain_once_per_connection"),
            # Anyone may claim a domain; only one connection can prove it.
            models.UniqueConstraint(
                fields=["domain"], condition=Q(verified_at__isnull=False), name="sso_domain_proven_once"
            ),
        ]

    def __str__(self):
        return self.domain

    @property
    def txt_name(self) -> str:
        return f"{self.TXT_PREFIX}.{self.domain}"

    @property
    def txt_value(self) -> str:
        return f"{self.TXT_VALUE_PREFIX}{self.verification_token}"
