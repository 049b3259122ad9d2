"""Accepting an invitation, and the password-reset link that only works on the account's home host."""

from __future__ import annotations

from allauth.account.utils import url_str_to_user_pk
from allauth.account.views import PasswordResetFromKeyView
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from tenants import services
from tenants.models import Invitation, User
from tenants.selectors.access import home_partner


@never_cache
def invitation_accept(request, token: str):
    """The page an invitation's link opens: who invites whom to what, and a button to accept.

    It answers on the inviting partner's host only, to the account the invitation was sent to.
    """
    invitation = (
        Invitation.objects.select_related("client__partner", "partner", "user")
        .filter(token_hash=services.invitation_token_hash(token))
        .first()
    )
    if invitation is None or invitation.home_partner.pk != getattr(request.partner, "pk", None):
        return render(request, "account/invitation.html", {"invalid": True}, status=404)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    context = {"invitation": invitation}
    if request.method == "POST":
        try:
            membership = services.invitation_accept(invitation=invitation, user=request.user)
        except services.InvitationRefused as refused:
            context["refused"] = str(refused)
        else:
            place = membership.client.name if membership.client_id else membership.partner.name
            messages.success(request, f"Welcome to {place}: you are now {membership.get_role_display()}.")
            return redirect(membership.client.path if membership.client_id else reverse("partner_home"))
    elif invitation.user_id != request.user.pk:
        context["refused"] = f"This invitation was sent to {invitation.email}: sign in as its owner to accept it."
    elif invitation.expires_at <= timezone.now():
        context["refused"] = "This invitation has expired: ask whoever invited you for a new one."
    return render(request, "account/invitation.html", context, status=403 if "refused" in context else 200)


class HomeHostPasswordResetFromKeyView(PasswordResetFromKeyView):
    """allauth's reset-from-key page, answering only on the host of the account's home partner (or the
    platform's): reset links are only ever sent there, and a key shown to another host is refused."""

    def dispatch(self, request, uidb36, key, **kwargs):
        try:
            pk = url_str_to_user_pk(uidb36)
        except ValueError:
            pk = None
        if pk is None or not 0 < pk < 2**63:  # past a bigint the lookup itself would fail
            return self._refused(request, key)
        user = User.objects.filter(pk=pk).first()
        if user is not None and getattr(home_partner(user), "pk", None) != getattr(request.partner, "pk", None):
            return self._refused(request, key)
        return super().dispatch(request, uidb36, key, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        # The link was mailed to the account's own address (AccountAdapter.send_password_reset_mail,
        # tenants.services.invitation_send): choosing the password through it proves the address.
        services.account_email_verify(user=self.reset_user, email=self.reset_user.email)
        return response

    def _refused(self, request, key):
        # allauth's own "this link is not valid" page, as for a wrong or used key.
        self.request, self.key, self.reset_user = request, key, None
        return self.render_to_response(self.get_context_data(token_fail=True))


password_reset_from_key = HomeHostPasswordResetFromKeyView.as_view()
