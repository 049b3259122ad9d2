"""allauth adapters: invite-only accounts, and account emails and authenticator entries in the brand of the
host they came from."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.mfa.adapter import DefaultMFAAdapter

from branding.selectors import brand_for_request, brand_palette
from portal.emails import brand_logo_url, branded_from_email


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        # People join by invitation from a partner or a client admin, never by signing up.
        return False

    def get_from_email(self):
        return branded_from_email(brand_for_request(self.request))

    def send_mail(self, template_prefix, email, context):
        brand = brand_for_request(self.request)
        context = {**context, "brand": brand, "palette": brand_palette(brand), "logo_url": brand_logo_url(brand)}
        super().send_mail(template_prefix, email, context)

    def format_email_subject(self, subject):
        return f"{subject} · {brand_for_request(self.request).product_name}"


class MFAAdapter(DefaultMFAAdapter):
    def get_totp_issuer(self) -> str:
        # The name a person's authenticator app lists this account under: the partner's product.
        return brand_for_request(context.request).product_name
