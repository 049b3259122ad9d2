"""Plan limits, enforced where a client workspace creates connections and flows or sets a schedule.

The flow and connection services call these before they write. The plan is read from the
database on every call (no caching), so a partner's plan change takes effect at once.
A client without a plan has no limits: the partner has not priced it yet.
"""

from __future__ import annotations

from tenants.models import Client, Plan


class PlanLimitReached(Exception):  # noqa: N818 - the domain's words, read by the views that show it
    """A client's plan does not allow this; `message` is the sentence to show the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# resource -> (the plan's field, singular noun, plural noun)
LIMITED_RESOURCES = {
    "connections": ("max_connections", "connection", "connections"),
    "flows": ("max_flows", "flow", "flows"),
}


def plan_for(client: Client) -> Plan | None:
    """The client's plan as it is in the database now (not as it was when `client` was loaded)."""
    plan_id = Client.objects.filter(pk=client.pk).values_list("plan_id", flat=True).first()
    if plan_id is None:
        return None
    return Plan.objects.select_related("partner").get(pk=plan_id)


def plan_limit_check(*, client: Client, resource: str, current_count: int) -> None:
    """Raise PlanLimitReached when the client already has as many `resource` as its plan includes.

    Call it before creating one more: `current_count` is how many exist now.
    """
    if resource not in LIMITED_RESOURCES:
        raise ValueError(f"Unknown plan resource {resource!r}; use one of {sorted(LIMITED_RESOURCES)}.")
    plan = plan_for(client)
    if plan is None:
        return
    field, singular, plural = LIMITED_RESOURCES[resource]
    limit = getattr(plan, field)
    if current_count < limit:
        return
    noun = singular if limit == 1 else plural
    raise PlanLimitReached(
        f'Your plan "{plan.name}" includes {limit} {noun}; remove one or ask {plan.partner.name} to upgrade.'
    )


def plan_min_interval_check(*, client: Client, interval_minutes: int | float) -> None:
    """Raise PlanLimitReached when a schedule would sync more often than the client's plan allows."""
    plan = plan_for(client)
    if plan is None or interval_minutes >= plan.min_sync_interval_minutes:
        return
    minimum = plan.min_sync_interval_minutes
    every = "minute" if minimum == 1 else f"{minimum} minutes"
    raise PlanLimitReached(
        f'Your plan "{plan.name}" syncs at most every {every}; choose {minimum} minutes or more,'
        f" or ask {plan.partner.name} to upgrade."
    )
