"""Template context for the page shell: which surface, whose workspace, and the switcher."""

from django.utils.functional import SimpleLazyObject

from tenants.models import Role
from tenants.selectors import partner_membership, workspaces_for


def surface(request):
    partner = getattr(request, "partner", None)
    user = getattr(request, "user", None)

    def _partner_role():
        membership = partner_membership(user, partner) if user is not None else None
        return membership.role if membership else None

    def _switcher():
        if user is None or partner is None or not user.is_authenticated:
            return []
        return list(workspaces_for(user, partner))

    return {
        "surface": getattr(request, "surface", "platform"),
        "partner": partner,
        "client": getattr(request, "client", None),
        "workspace_role": getattr(request, "workspace_role", None),
        "partner_role": SimpleLazyObject(_partner_role),
        "switcher_workspaces": SimpleLazyObject(_switcher),
        "Role": Role,
    }
