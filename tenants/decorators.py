"""Server-side role checks for the three surfaces. Every view carries exactly one of these."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404

from tenants.models import Role
from tenants.selectors.access import is_platform_admin, request_standing

WORKSPACE_ALL = frozenset(
    {Role.CLIENT_ADMIN, Role.CLIENT_FINANCE, Role.CLIENT_VIEWER, Role.PARTNER_ADMIN, Role.PARTNER_STAFF}
)
WORKSPACE_EDITORS = frozenset({Role.CLIENT_ADMIN, Role.PARTNER_ADMIN, Role.PARTNER_STAFF})
WORKSPACE_FINANCE = frozenset({Role.CLIENT_ADMIN, Role.CLIENT_FINANCE, Role.PARTNER_ADMIN, Role.PARTNER_STAFF})


def _login_first(request):
    return redirect_to_login(request.get_full_path())


def platform_admin_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.partner is not None:
            raise Http404
        if not request.user.is_authenticated:
            return _login_first(request)
        if not is_platform_admin(request.user):
            raise PermissionDenied("Only platform administrators can open the operator console.")
        return view(request, *args, **kwargs)

    return wrapper


def partner_role_required(*roles: str):
    allowed = frozenset(roles or (Role.PARTNER_ADMIN, Role.PARTNER_STAFF))

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.partner is None:
                raise Http404
            if not request.user.is_authenticated:
                return _login_first(request)
            membership = request_standing(request).staff
            if membership is None or membership.role not in allowed:
                raise PermissionDenied("Your role does not open this page of the partner console.")
            request.partner_membership = membership
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def workspace_role_required(roles=WORKSPACE_ALL):
    allowed = frozenset(roles)

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            # WorkspaceMiddleware has already refused anyone who may not enter this workspace.
            if request.client is None:
                raise Http404
            if request.workspace_role not in allowed:
                raise PermissionDenied("Your role in this workspace does not allow this.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
