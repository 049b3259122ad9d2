"""Home pages of the platform operator console and the client workspace."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tenants import services
from tenants.decorators import platform_admin_required
from tenants.forms import PartnerCreateForm
from tenants.models import Partner


@platform_admin_required
def platform_home(request, form=None):
    partners = Partner.objects.prefetch_related("domains", "clients").order_by("name")
    context = {
        "partners": partners,
        "form": form or PartnerCreateForm(),
        "platform_admins_require_mfa": settings.PLATFORM_ADMINS_REQUIRE_MFA,
    }
    return render(request, "tenants/platform_home.html", context)


@require_POST
@platform_admin_required
def partner_create(request):
    form = PartnerCreateForm(request.POST)
    if not form.is_valid():
        return platform_home(request, form=form)
    partner = services.partner_create(**form.cleaned_data, actor=request.user)
    messages.success(
        request, f"Partner {partner.name} created; an invitation went to {form.cleaned_data['admin_email']}."
    )
    return redirect("platform_home")
