"""The workspace's overview, its people (invite, role, remove) and its audit log."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST, require_safe

from integrations import selectors
from integrations.dashboard_cache import dashboard_cached
from integrations.forms.people import InviteForm, RoleForm, WorkspaceAuditFilterForm
from integrations.models import SyncException
from integrations.views.support import redirect_to, refusal_said, render_page, sla_hours, url
from portal.audit_log import audit_page_context
from tenants.decorators import WORKSPACE_ALL, WORKSPACE_EDITORS, workspace_role_required
from tenants.models import Membership, Role
from tenants.selectors.people import client_members, pending_invitations
from tenants.services.members import (
    MemberChangeRefused,
    workspace_member_invite,
    workspace_member_remove,
    workspace_member_role_set,
)


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def workspace_home(request, client_slug):
    hours = sla_hours(request)
    overview = selectors.workspace_overview(sla_hours=hours)
    top = dashboard_cached("overview-top-errors", _top_errors)
    context = {
        "overview": overview,
        "top_errors": top["rows"],
        "members": client_members(request.client),
        "section": "overview",
    }
    return render_page(request, "integrations/overview.html", context)


def _top_errors() -> dict:
    """The error codes with the most open exceptions: one bounded count per code present."""
    counts = selectors.open_exceptions_by("error_code", selectors.distinct_values(SyncException, "error_code"))
    rows = sorted(
        ({"code": code, "count": tally} for code, tally in counts.items() if tally.value),
        key=lambda r: -r["count"].value,
    )
    return {"rows": rows[:4]}


def _people_context(request, **extra) -> dict:
    client = request.client
    members = list(client_members(client))
    for member in members:
        member.role_form = RoleForm(initial={"role": member.role}, prefix=f"m{member.pk}")
    partner_people = (
        (
            Membership.objects.filter(partner_id=client.partner_id, role=Role.PARTNER_ADMIN)
            | Membership.objects.filter(partner_id=client.partner_id, role=Role.PARTNER_STAFF, assigned_clients=client)
        )
        .select_related("user")
        .distinct()
        .order_by("role", "user__email")
    )
    context = {
        "members": members,
        "invitations": pending_invitations(client=client),
        "partner_people": partner_people,
        "invite_form": InviteForm(),
        "section": "people",
    }
    context.update(extra)
    return context


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def workspace_users(request, client_slug):
    return render_page(request, "integrations/people/users.html", _people_context(request))


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def user_invite_view(request, client_slug):
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            workspace_member_invite(
                client=request.client,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                full_name=form.cleaned_data["full_name"],
                actor=request.user,
            )
        except MemberChangeRefused as refused:
            form.add_error("email", str(refused))
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect_to(request, url(request, "workspace_users"))
    context = _people_context(request, invite_form=form)
    return render_page(request, "integrations/people/users.html", context, partial="invite_form", status=422)


def _membership(request, pk) -> Membership:
    # Memberships live in the public schema: only this client's may be touched from its workspace.
    return get_object_or_404(Membership.objects.select_related("user", "client"), pk=pk, client=request.client)


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def user_role(request, client_slug, pk):
    membership = _membership(request, pk)
    form = RoleForm(request.POST, prefix=f"m{membership.pk}")
    if not form.is_valid():
        messages.error(request, "Choose one of the workspace roles.")
    else:
        with refusal_said(request, MemberChangeRefused):
            workspace_member_role_set(membership=membership, role=form.cleaned_data["role"], actor=request.user)
            messages.success(request, f"{membership.user.email} is now {membership.get_role_display()}.")
    return redirect_to(request, url(request, "workspace_users"))


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def user_remove(request, client_slug, pk):
    membership = _membership(request, pk)
    with refusal_said(request, MemberChangeRefused):
        workspace_member_remove(membership=membership, actor=request.user)
        messages.success(request, f"{membership.user.email} no longer has access to {request.client.name}.")
    return redirect_to(request, url(request, "workspace_users"))


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def audit_log(request, client_slug):
    form = WorkspaceAuditFilterForm(request.GET, groups=selectors.audit_action_groups())
    context = audit_page_context(request, form, selectors.audit_events)
    return render_page(request, "integrations/people/audit.html", context, partial="events")
