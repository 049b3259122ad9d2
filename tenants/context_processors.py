"""Template context for the page shell: which surface, whose workspace, and the switcher."""

from django.utils.functional import SimpleLazyObject

from tenants.models import Role
from tenants.selectors.access import request_standing


def surface(request):
    partner = getattr(request, "partner", None)
    user = getattr(request, "user", None)

    def _partner_role():
        if user is None or partner is None:
            return None
        staff = request_standing(request).staff
        return staff.role if staff else None

    def _switcher():
        if user is None or partner is None or not user.is_authenticated:
            return []
        return request_standing(request).workspaces(user, partner)

    return {
        "surface": getattr(request, "surface", "platform"),
        "partner": partner,
        "client": getattr(request, "client", None),
        "workspace_role": getattr(request, "workspace_role", None),
        "partner_role": SimpleLazyObject(_partner_role),
        "switcher_workspaces": SimpleLazyObject(_switcher),
        "Role": Role,
    }
