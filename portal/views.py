"""Shell views: where a user lands after login, health, and the error pages."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.log import log_response
from django.views.decorators.cache import never_cache

from portal.health import health_report
from tenants.selectors.access import is_platform_admin, partner_membership, workspaces_for


@never_cache
def landing(request):
    """Send each user to their surface on this host: operator console, partner console or workspace."""
    if not request.user.is_authenticated:
        return redirect("account_login")
    if request.partner is None:
        if is_platform_admin(request.user):
            return redirect("platform_home")
        return render(request, "no_access.html", status=403)
    if partner_membership(request.user, request.partner):
        return redirect("partner_home")
    workspaces = list(workspaces_for(request.user, request.partner))
    if len(workspaces) == 1:
        return redirect(workspaces[0].path)
    if workspaces:
        return render(request, "choose_workspace.html", {"workspaces": workspaces})
    return render(request, "no_access.html", status=403)


@never_cache
def healthz(request):
    report = health_report()
    response = JsonResponse(report, status=200 if report["ok"] else 503)
    if not report["ok"]:
        # An unhealthy report is the answer asked for, not a server error: a warning naming what is
        # down (Django would log every 503 as an error, e.g. while the worker starts).
        down = ", ".join(name for name, check in report["checks"].items() if not check["ok"])
        log_response("Health check: %s not healthy", down, response=response, request=request, level="warning")
    return response


def error_403(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def error_404(request, exception=None):
    return render(request, "404.html", status=404)


def error_500(request):
    return render(request, "500.html", status=500)


@never_cache
def metrics(request):
    """Prometheus exposition of run and vendor-call metrics, only to a scraper with the bearer token.

    Without METRICS_TOKEN it does not exist (404): every host answers this path, and run counts per
    template are nobody's business but the operator's.
    """
    import hmac

    from django.conf import settings
    from django.http import Http404, HttpResponse, HttpResponseForbidden

    from integrations.metrics import exposition

    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: set METRICS_TOKEN")
    given = request.headers.get("Authorization", "").encode("utf-8", "replace")
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        return HttpResponseForbidden("metrics need the bearer token\n", content_type="text/plain")
    return HttpResponse(exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")
