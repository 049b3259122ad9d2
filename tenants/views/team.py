"""The partner's team: invite admins and staff, and choose which clients each staff member reaches."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import services
from tenants.decorators import partner_role_required
from tenants.forms import MfaPolicyForm, StaffAssignForm, StaffInviteForm
from tenants.models import Invitation, Membership, MfaPolicy, Role
from tenants.selectors.people import partner_staff, pending_invitations
from tenants.views.support import redirect_to, refusal_said, render_page


def _team_context(request, invite_form=None) -> dict:
    members = list(partner_staff(request.partner))
    for member in members:
        if member.role == Role.PARTNER_STAFF:
            member.assign_form = StaffAssignForm(
                partner=request.partner,
                initial={"clients": [client.pk for client in member.assigned_clients.all()]},
                prefix=f"m{member.pk}",
            )
    return {
        "members": members,
        "invitations": pending_invitations(partner=request.partner),
        "mfa_form": MfaPolicyForm(initial={"mfa_policy": request.partner.mfa_policy}),
        "invite_form": invite_form or StaffInviteForm(partner=request.partner),
        "client_count": request.partner.clients.count(),
        "section": "team",
    }


@partner_role_required(Role.PARTNER_ADMIN)
def team(request):
    return render_page(request, "tenants/team.html", _team_context(request))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def team_invite(request):
    form = StaffInviteForm(request.POST, partner=request.partner)
    if not form.is_valid():
        return render_page(
            request, "tenants/team.html", _team_context(request, form), partial="invite_form", status=422
        )
    data = form.cleaned_data
    invited = services.staff_invite(
        partner=request.partner,
        email=data["email"],
        role=data["role"],
        clients=list(data["clients"]),
        full_name=data["full_name"],
        actor=request.user,
    )
    if isinstance(invited, Invitation):
        messages.success(
            request, f"Invitation sent to {data['email']}: they have an account and join your team when they accept it."
        )
    else:
        messages.success(request, f"Invitation sent to {data['email']}.")
    return redirect_to(request, reverse("partner_team"))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def team_mfa_policy(request):
    form = MfaPolicyForm(request.POST)
    if form.is_valid():
        services.partner_mfa_policy_set(
            partner=request.partner, policy=form.cleaned_data["mfa_policy"], actor=request.user
        )
        label = MfaPolicy(form.cleaned_data["mfa_policy"]).label
        messages.success(request, f"Two-factor sign-in: {label.lower()}. It applies from each person's next sign-in.")
    else:
        messages.error(request, "Choose one of the two-factor sign-in policies.")
    return redirect_to(request, reverse("partner_team"))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def team_assign(request, pk):
    member = get_object_or_404(Membership, partner=request.partner, role=Role.PARTNER_STAFF, pk=pk)
    form = StaffAssignForm(request.POST, partner=request.partner, prefix=f"m{member.pk}")
    if form.is_valid():
        services.staff_assign(membership=member, clients=list(form.cleaned_data["clients"]), actor=request.user)
        count = len(form.cleaned_data["clients"])
        messages.success(request, f"{member.user.display_name} now reaches {count} client{'s' if count != 1 else ''}.")
    else:
        messages.error(request, "Choose among your own clients.")
    return redirect_to(request, reverse("partner_team"))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def team_remove(request, pk):
    member = get_object_or_404(Membership, partner=request.partner, pk=pk)
    with refusal_said(request, services.MemberRemovalRefused):
        services.partner_member_remove(membership=member, actor=request.user)
        messages.success(request, f"{member.user.display_name} is no longer on your team.")
    return redirect_to(request, reverse("partner_team"))
