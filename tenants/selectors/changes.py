"""Change requests as the partner console and the workspace list them."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import ChangeRequest, Client, Partner, User
from tenants.models.changes import OPEN_STATUSES
from tenants.selectors.access import workspaces_for


def change_requests_for_partner(user: User, partner: Partner, *, only_open: bool = False) -> QuerySet[ChangeRequest]:
    """The change requests of the clients `user` may reach under `partner` (every client for its admins, the
    assigned ones for its staff), newest first."""
    rows = ChangeRequest.objects.filter(client__in=workspaces_for(user, partner)).select_related("client__plan")
    if only_open:
        rows = rows.filter(status__in=OPEN_STATUSES)
    return rows.order_by("-requested_at", "-id")


def change_requests_of(client: Client) -> QuerySet[ChangeRequest]:
    return ChangeRequest.objects.filter(client=client).select_related("requested_by").order_by("-number")


def change_request_counts(rows) -> dict[str, int]:
    """How many requests wait on whom: the partner to quote, the client to decide, the partner to deliver."""
    counts = {status: 0 for status in ChangeRequest.Status.values}
    for status in rows.values_list("status", flat=True):
        counts[status] += 1
    return counts
