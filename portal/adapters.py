"""allauth adapter: invite-only accounts, and account emails in the brand of the host they came from."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter

from branding.selectors import brand_for_request, brand_palette
from portal.emails import branded_from_email


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        # People join by invitation from a partner or a client admin, never by signing up.
        return False

    def get_from_email(self):
        return branded_from_email(brand_for_request(self.request))

    def send_mail(self, template_prefix, email, context):
        brand = brand_for_request(self.request)
        context = {**context, "brand": brand, "palette": brand_palette(brand)}
        super().send_mail(template_prefix, email, context)

    def format_email_subject(self, subject):
        return f"{subject} · {brand_for_request(self.request).product_name}"
