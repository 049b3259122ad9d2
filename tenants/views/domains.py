"""Custom domains: add one, see the DNS records to create, verify it, make it the primary."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import services
from tenants.decorators import partner_role_required
from tenants.forms import DomainAddForm
from tenants.models import PartnerDomain, Role
from tenants.views.support import redirect_to, refusal_said, render_page


def cname_target(partner) -> str:
    """Where custom domains point: the platform's ingress host when configured, else the partner's own host."""
    configured = getattr(settings, "CUSTOM_DOMAIN_CNAME_TARGET", "")
    if configured:
        return configured
    own = partner.domains.filter(requires_verification=False).order_by("-is_primary", "domain").first()
    return own.domain if own else settings.PLATFORM_HOSTS[0]


def _context(request, form=None, checked=None, notice="") -> dict:
    return {
        "domains": PartnerDomain.objects.filter(partner=request.partner).order_by("-is_primary", "domain"),
        "form": form or DomainAddForm(partner=request.partner),
        "cname_target": cname_target(request.partner),
        "checked": checked,
        "notice": notice,
        "section": "brand",
    }


@partner_role_required(Role.PARTNER_ADMIN)
def domains(request):
    return render_page(request, "tenants/domains.html", _context(request))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def domain_add(request):
    form = DomainAddForm(request.POST, partner=request.partner)
    if not form.is_valid():
        return render_page(request, "tenants/domains.html", _context(request, form), partial="domain_panel", status=422)
    domain = services.domain_add(partner=request.partner, domain=form.cleaned_data["domain"], actor=request.user)
    notice = f"{domain.domain} added. Create the two DNS records below, then verify it."
    if request.htmx:
        context = _context(request, checked=domain.pk, notice=notice)
        return render_page(request, "tenants/domains.html", context, partial="domain_panel")
    messages.success(request, notice)
    return redirect_to(request, reverse("partner_domains"))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def domain_verify(request, pk):
    domain = get_object_or_404(PartnerDomain, partner=request.partner, pk=pk)
    check = services.domain_verify(domain=domain, actor=request.user)
    if request.htmx:
        return render_page(
            request, "tenants/domains.html", _context(request, checked=domain.pk), partial="domain_panel"
        )
    (messages.success if check.verified else messages.warning)(request, check.message)
    return redirect_to(request, reverse("partner_domains"))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def domain_remove(request, pk):
    domain = get_object_or_404(PartnerDomain, partner=request.partner, pk=pk)
    with refusal_said(request, ValueError):
        services.domain_remove(domain=domain, actor=request.user)
        messages.success(request, f"{domain.domain} removed; it no longer serves your portal.")
    return redirect_to(request, reverse("partner_domains"))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def domain_primary(request, pk):
    domain = get_object_or_404(PartnerDomain, partner=request.partner, pk=pk)
    with refusal_said(request, ValueError):
        services.domain_make_primary(domain=domain, actor=request.user)
        messages.success(request, f"Emails and invitations now link to {domain.domain}.")
    return redirect_to(request, reverse("partner_domains"))
