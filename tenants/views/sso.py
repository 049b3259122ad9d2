"""Sign-in security: a partner's single sign-on for its staff (partner console), a client's for its people and
its two-factor rule (workspace), and the login page's "continue with single sign-on" by email domain."""

from __future__ import annotations

from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import sso_services
from tenants.decorators import partner_role_required, workspace_role_required
from tenants.models import Role, SsoConnection, SsoDomain
from tenants.sso_forms import SsoConnectionForm, SsoDiscoverForm, SsoDomainForm, WorkspaceMfaForm
from tenants.sso_saml import certificate_summary
from tenants.sso_selectors import sso_connection_for_email

WORKSPACE_ADMINS = frozenset({Role.CLIENT_ADMIN, Role.PARTNER_ADMIN})


# --- The login page's discovery ---------------------------------------------------------------------


def sso_discover(request):
    """An email in, the person's identity provider out: its domain must be proven for an IdP on this host."""
    if request.method != "POST":
        form = SsoDiscoverForm(initial={"email": request.GET.get("email", "")})
        return render(request, "account/sso_discover.html", {"form": form, "next": request.GET.get("next", "")})
    form = SsoDiscoverForm(request.POST)
    if form.is_valid():
        connection = sso_connection_for_email(
            partner=getattr(request, "partner", None), email=form.cleaned_data["email"]
        )
        if connection is not None:
            provider = get_social_adapter(request).get_provider(request, connection.provider_id)
            next_url = request.POST.get("next", "")
            answer = provider.redirect(request, "login", next_url=next_url if next_url.startswith("/") else None)
            if answer.status_code != 302:
                return answer
            # Not a redirect: the CSP's form-action 'self' forbids a form's answer from leading to another
            # origin, so the page moves on itself (a refresh is no form navigation) and offers a link too.
            context = {"connection": connection, "authorize_url": answer["Location"]}
            return render(request, "account/sso_continue.html", context)
        domain = form.cleaned_data["email"].rpartition("@")[2]
        form.add_error("email", f"No single sign-on is set up for {domain} here: sign in with your password.")
    return render(
        request, "account/sso_discover.html", {"form": form, "next": request.POST.get("next", "")}, status=422
    )


# --- Configuration, for either scope ----------------------------------------------------------------


def _scope(request):
    """(partner, client) of the page: the workspace's client, or None for the partner's own staff."""
    client = getattr(request, "client", None)
    return (client.partner if client is not None else request.partner), client


def _urls(request) -> dict:
    client = getattr(request, "client", None)
    if client is None:
        return {
            "save": reverse("partner_sso"),
            "domain_add": reverse("partner_sso_domain_add"),
            "domain_base": reverse("partner_sso"),
        }
    return {
        "save": reverse("workspace_security", args=[client.slug]),
        "domain_add": reverse("workspace_sso_domain_add", args=[client.slug]),
        "domain_base": reverse("workspace_security", args=[client.slug]),
        "mfa": reverse("workspace_security_mfa", args=[client.slug]),
    }


def _connection(request) -> SsoConnection | None:
    partner, client = _scope(request)
    if client is not None:
        return SsoConnection.objects.filter(client=client).first()
    return SsoConnection.objects.filter(partner=partner, client__isnull=True).first()


def _page(request, form=None, domain_form=None, status=200):
    partner, client = _scope(request)
    connection = _connection(request)
    callback = ""
    saml = {}
    if connection is not None:
        callback = request.build_absolute_uri(
            reverse("openid_connect_callback", kwargs={"provider_id": connection.provider_id})
        )
        # What the IdP's administrator pastes in: allauth's SAML routes for this connection. The entity ID is
        # the metadata URL, as allauth's SAML provider names the portal by default.
        metadata_url = request.build_absolute_uri(reverse("saml_metadata", args=[connection.provider_id]))
        saml = {
            "metadata_url": metadata_url,
            "entity_id": metadata_url,
            "acs_url": request.build_absolute_uri(reverse("saml_acs", args=[connection.provider_id])),
            "idp_certificate": certificate_summary(connection.saml_x509cert) if connection.saml_x509cert else "",
        }
    context = {
        "connection": connection,
        "form": form or SsoConnectionForm(instance=connection, client=client),
        "domain_form": domain_form or SsoDomainForm(),
        "domains": connection.domains.all() if connection else [],
        "callback_url": callback,
        "saml": saml,
        "urls": _urls(request),
        "scope_name": client.name if client else f"{partner.name}'s team",
        "mfa_form": WorkspaceMfaForm(initial={"requires_mfa": client.requires_mfa}) if client else None,
        "section": "security" if client else "team",
        "can_edit": True,
        "base_template": "integrations/base.html" if client else "base.html",
    }
    return render(request, "tenants/sso.html", context, status=status)


def _save(request):
    partner, client = _scope(request)
    connection = _connection(request)
    form = SsoConnectionForm(request.POST, request.FILES, instance=connection, client=client)
    if not form.is_valid():
        return _page(request, form=form, status=422)
    values = {**form.cleaned_data, "group_roles": form.cleaned_data["group_rules"]}
    saved = sso_services.sso_connection_save(
        partner=partner, client=client, values=values, actor=request.user, connection=connection
    )
    messages.success(request, f"Single sign-on through {saved.name} saved.")
    return redirect(_urls(request)["save"])


def _domain_add(request):
    connection = _connection(request)
    form = SsoDomainForm(request.POST)
    if connection is None:
        messages.error(request, "Save the identity provider first, then add its email domains.")
        return redirect(_urls(request)["save"])
    if not form.is_valid():
        return _page(request, domain_form=form, status=422)
    added = sso_services.sso_domain_add(connection=connection, domain=form.cleaned_data["domain"], actor=request.user)
    messages.success(request, f"{added.domain} claimed. Publish its TXT record, then verify it.")
    return redirect(_urls(request)["save"])


def _domain(request, pk) -> SsoDomain:
    connection = _connection(request)
    return get_object_or_404(SsoDomain, connection=connection, pk=pk)


def _domain_verify(request, pk):
    check = sso_services.sso_domain_verify(domain=_domain(request, pk), actor=request.user)
    (messages.success if check.verified else messages.warning)(request, check.message)
    return redirect(_urls(request)["save"])


def _domain_remove(request, pk):
    domain = _domain(request, pk)
    sso_services.sso_domain_remove(domain=domain, actor=request.user)
    messages.success(request, f"{domain.domain} removed: its people no longer sign in through this provider.")
    return redirect(_urls(request)["save"])


# --- Partner console ----------------------------------------------------------------------------------


@partner_role_required(Role.PARTNER_ADMIN)
def partner_sso(request):
    return _save(request) if request.method == "POST" else _page(request)


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def partner_sso_domain_add(request):
    return _domain_add(request)


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def partner_sso_domain_verify(request, pk):
    return _domain_verify(request, pk)


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def partner_sso_domain_remove(request, pk):
    return _domain_remove(request, pk)


# --- Workspace ------------------------------------------------------------------------------------------


@workspace_role_required(WORKSPACE_ADMINS)
def workspace_security(request, client_slug):
    return _save(request) if request.method == "POST" else _page(request)


@require_POST
@workspace_role_required(WORKSPACE_ADMINS)
def workspace_security_mfa(request, client_slug):
    form = WorkspaceMfaForm(request.POST)
    form.is_valid()  # a checkbox: absent means off
    required = bool(form.cleaned_data.get("requires_mfa"))
    sso_services.client_mfa_requirement_set(client=request.client, required=required, actor=request.user)
    messages.success(
        request,
        "Everyone in this workspace now signs in with a second factor, from their next sign-in."
        if required
        else "A second factor is no longer required of everyone here (your partner's own rule still applies).",
    )
    return redirect(reverse("workspace_security", args=[client_slug]))


@require_POST
@workspace_role_required(WORKSPACE_ADMINS)
def workspace_sso_domain_add(request, client_slug):
    return _domain_add(request)


@require_POST
@workspace_role_required(WORKSPACE_ADMINS)
def workspace_sso_domain_verify(request, client_slug, pk):
    return _domain_verify(request, pk)


@require_POST
@workspace_role_required(WORKSPACE_ADMINS)
def workspace_sso_domain_remove(request, client_slug, pk):
    return _domain_remove(request, pk)
