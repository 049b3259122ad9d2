"""Security headers on every response of the product."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

# No inline script and no third-party origin anywhere: every asset is vendored under static/.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if getattr(settings, "SECURE_HSTS_SECONDS", 0) and request.is_secure():
            response.headers.setdefault("Strict-Transport-Security", f"max-age={settings.SECURE_HSTS_SECONDS}")
        return response


class RequestLimitsMiddleware:
    """Refuse what no legitimate request carries, before any view reads it: a body larger than
    REQUEST_MAX_BYTES (413), and NUL characters in the path or parameters (400).

    Django caps form fields (DATA_UPLOAD_MAX_MEMORY_SIZE) but streams uploaded files to disk
    whatever their size. PostgreSQL refuses NUL in text, so a NUL reaching a query or a saved
    field would be a server error wherever a view reads a parameter without a form.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refusal(request, 400, "Unreadable Content-Length.")
        if length > settings.REQUEST_MAX_BYTES:
            megabytes = settings.REQUEST_MAX_BYTES / (1024 * 1024)
            return _refusal(request, 413, f"This request is larger than the {megabytes:g} MB the portal accepts.")
        if _carries_nul(request):
            return _refusal(request, 400, "NUL characters are not accepted.")
        return self.get_response(request)


def _refusal(request, status: int, sentence: str) -> HttpResponse:
    """Plain text to a browser; a problem document (RFC 9457) to an API client."""
    if request.path_info.startswith("/api/"):
        from api.problems import problem_response

        return problem_response(status, sentence)
    return HttpResponse(f"{sentence}\n", status=status, content_type="text/plain")


def _carries_nul(request) -> bool:
    if "\x00" in request.path:
        return True
    parameters = [request.GET]
    if request.method == "POST" and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        parameters.append(request.POST)  # parsed once; CSRF and the view read the same parse
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for query in parameters
        for key, values in query.lists()
    )


MFA_ENROLMENT_DUE = "mfa_enrolment_due"
# What a person who must set up a second factor may still open: the account pages (two-factor
# set-up itself, sign out, email confirmation) and the assets those pages need.
MFA_ENROLMENT_OPEN_PATHS = ("/accounts/", "/static/", "/brand", "/healthz")


class MfaEnrolmentMiddleware:
    """Keep someone who must use a second factor (tenants.selectors.access.mfa_required) on the set-up page
    until they have one. The sign-in marks the session (portal.adapters.AccountAdapter.post_login),
    so only those sessions pay for the check."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.session.get(MFA_ENROLMENT_DUE) and request.user.is_authenticated:
            from allauth.mfa.utils import is_mfa_enabled

            if is_mfa_enabled(request.user):
                del request.session[MFA_ENROLMENT_DUE]
            elif not request.path_info.startswith(MFA_ENROLMENT_OPEN_PATHS):
                target = reverse("mfa_activate_totp")
                if getattr(request, "htmx", False):
                    return HttpResponse(status=204, headers={"HX-Redirect": target})
                return redirect(target)
        return self.get_response(request)
