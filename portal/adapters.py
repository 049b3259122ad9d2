"""allauth adapters: invite-only accounts, account emails in the right brand on the right host, the second
factor that partners (and the platform) require, and authenticator entries in the partner's brand."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from branding.selectors import brand_for_partner, brand_for_request, brand_palette
from portal.emails import brand_logo_url, branded_from_email
from portal.middleware import MFA_ENROLMENT_DUE
from tenants.selectors.access import home_partner, mfa_required


class AccountAdapter(DefaultAccountAdapter):
    # The brand of the email being sent when it is not the request's (an instance serves one call).
    brand = None

    def is_open_for_signup(self, request):
        # People join by invitation from a partner or a client admin, never by signing up.
        return False

    def _brand(self):
        return self.brand or brand_for_request(self.request)

    def get_from_email(self):
        return branded_from_email(self._brand())

    def send_mail(self, template_prefix, email, context):
        brand = self._brand()
        context = {**context, "brand": brand, "palette": brand_palette(brand), "logo_url": brand_logo_url(brand)}
        super().send_mail(template_prefix, email, context)

    def format_email_subject(self, subject):
        return f"{subject} · {self._brand().product_name}"

    def send_password_reset_mail(self, user, email, context):
        """To the account's own address, in its home brand, with a link on its home host: never on
        the host the request came to. A partner controls its custom domains and would read the key
        of any account (another partner's admin, the operator) asked for there."""
        from tenants.services import site_base_url

        partner = home_partner(user)
        self.brand = brand_for_partner(partner)
        path = reverse(
            "account_reset_password_from_key",
            urlconf="portal.urls_platform",  # the same accounts/ paths on every host
            kwargs={"uidb36": context["uid"], "key": context["key"]},
        )
        context = {**context, "password_reset_url": site_base_url(partner) + path}
        return super().send_password_reset_mail(user, user.email, context)

    def get_email_confirmation_url(self, request, emailconfirmation):
        """Confirmation links too go to the account's home host, whatever host asked for them."""
        from tenants.services import site_base_url

        user = emailconfirmation.email_address.user
        self.brand = brand_for_partner(home_partner(user))
        path = reverse("account_confirm_email", urlconf="portal.urls_platform", args=[emailconfirmation.key])
        return site_base_url(home_partner(user)) + path

    def post_login(self, request, user, **kwargs):
        response = super().post_login(request, user, **kwargs)
        if mfa_required(user) and not is_mfa_enabled(user):
            # Kept on the set-up page until a second factor is active (portal.middleware).
            request.session[MFA_ENROLMENT_DUE] = True
            messages.warning(request, "Your organisation requires two-factor sign-in: set it up to continue.")
            return redirect("mfa_activate_totp")
        return response


class MFAAdapter(DefaultMFAAdapter):
    def can_delete_authenticator(self, authenticator):
        # Someone who must use a second factor cannot switch it off.
        return not mfa_required(authenticator.user) and super().can_delete_authenticator(authenticator)

    def get_totp_issuer(self) -> str:
        # The name a person's authenticator app lists this account under: the partner's product.
        return brand_for_request(context.request).product_name
