"""Subscriptions and renewals: a client's term, price and renewal, and the partner's upcoming renewals."""

from __future__ import annotations

from django.contrib import messages
from django.urls import reverse
from django.utils import timezone

from tenants import services
from tenants.decorators import partner_role_required
from tenants.forms import SubscriptionForm
from tenants.models import Role
from tenants.selectors.renewals import upcoming_renewals
from tenants.selectors.revenue import subscription_of
from tenants.views.support import partner_client, redirect_to, render_page


@partner_role_required(Role.PARTNER_ADMIN)
def renewals(request):
    upcoming = upcoming_renewals(request.partner)
    context = {
        "renewals": upcoming,
        "within_90": [renewal for renewal in upcoming if renewal.days <= 90],
        "unsubscribed": request.partner.clients.filter(subscription__isnull=True, plan__isnull=False).order_by("name"),
        "section": "renewals",
    }
    return render_page(request, "tenants/renewals.html", context)


@partner_role_required(Role.PARTNER_ADMIN)
def subscription_edit(request, slug):
    client = partner_client(request, slug)
    subscription = subscription_of(client)
    currency = client.plan.currency if client.plan else ""
    form = SubscriptionForm(request.POST or None, initial=_initial(client, subscription), currency=currency)
    if request.method == "POST" and form.is_valid():
        try:
            services.subscription_set(client=client, actor=request.user, **form.cleaned_data)
        except services.SubscriptionRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, f"Subscription saved for {client.name}; statements use it from its first month.")
            return redirect_to(request, reverse("partner_client", args=[client.slug]))
    context = {
        "form": form,
        "this_client": client,
        "subscription": subscription,
        "terms": list(subscription.terms.order_by("-starts_on")) if subscription else [],
        "section": "renewals",
    }
    status = 422 if form.is_bound and form.errors else 200
    return render_page(request, "tenants/subscription_form.html", context, partial="subscription_form", status=status)


def _initial(client, subscription) -> dict:
    if subscription is None or subscription.current_term is None:
        price = client.plan.monthly_price if client.plan else 0
        return {"starts_on": timezone.localdate(), "term_months": 12, "monthly_price": price, "auto_renew": True}
    term = subscription.current_term
    return {
        "starts_on": term.starts_on,
        "term_months": subscription.term_months,
        "monthly_price": term.monthly_price,
        "auto_renew": subscription.auto_renew,
        "renewal_price": subscription.renewal_price,
        "reminder_days": subscription.reminder_days,
    }
