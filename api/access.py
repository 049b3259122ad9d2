"""Who may do what through the API: the key's scopes, its creator's role (the pages' own rule), and
the client an operation reaches, resolved inside the host's partner only."""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings
from django_tenants.utils import tenant_context
from ninja.security import HttpBearer

from api.calls import throttle
from api.models import ApiKey
from api.problems import ApiProblem
from api.selectors import acting_role
from tenants.decorators import WORKSPACE_ALL, WORKSPACE_EDITORS, WORKSPACE_FINANCE
from tenants.models import Client

# The role a write needs in a workspace, by resource family: the same sets the pages' views use.
WRITE_ROLES = {
    "connections": WORKSPACE_EDITORS,
    "flows": WORKSPACE_EDITORS,
    "exceptions": WORKSPACE_FINANCE,
    "audit": frozenset(),
}


class KeyAuth(HttpBearer):
    """ApiCallMiddleware has checked the key; this documents the scheme and refuses a request without one."""

    openapi_description = "An API key created in the partner console (partner key) or a client workspace (client key)."

    def authenticate(self, request, token):
        return getattr(request, "api_key", None)


def allow(request, family: str, action: str, *, write: bool = False, target="") -> ApiKey:
    """The calling key, when its scopes include `family` (write or read); names the call for the audit."""
    key: ApiKey = request.auth
    request.api_action = f"api.{family}.{action}"
    request.api_target = target
    if not key.allows(family, write):
        needed = f"{family}:{'write' if write else 'read'}"
        raise ApiProblem(403, f"This key's scopes do not include {needed}.")
    return key


def partner_only(request) -> ApiKey:
    key: ApiKey = request.auth
    if key.client_id is not None:
        raise ApiProblem(403, "Only a partner key may do this; this is a client key.")
    return key


def client_for(request, slug: str, family: str, action: str, *, write: bool = False, target="") -> Client:
    """The client `slug` of this host's partner, if the key may reach it, else 404 (a client the key may
    not reach and one that does not exist look alike). Counts the call against the client's rate."""
    key = allow(request, family, action, write=write, target=target)
    client = Client.objects.select_related("partner", "plan").filter(partner=request.partner, slug=slug).first()
    if client is None or (key.client_id is not None and key.client_id != client.pk):
        raise ApiProblem(404, "No such client.")
    role = acting_role(key, client)
    if role not in WORKSPACE_ALL:
        raise ApiProblem(404, "No such client.")
    if write and family in WRITE_ROLES and role not in WRITE_ROLES[family]:
        raise ApiProblem(403, "The role of this key's creator in this workspace does not allow this.")
    request.api_client = client
    throttle(f"client:{client.pk}", settings.API_CLIENT_RATE_PER_MINUTE)
    return client


@contextmanager
def inside(request, slug: str, family: str, action: str, *, write: bool = False, target=""):
    """Run the operation inside the client's own schema (and back to public after)."""
    client = client_for(request, slug, family, action, write=write, target=target)
    with tenant_context(client):
        yield client
