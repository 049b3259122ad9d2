"""Plan limits, enforced where a client workspace creates connections and flows or sets a schedule.

The flow and connection services call these before they write. The plan is read from the
database on every call (no caching), so a partner's plan change takes effect at once.
A client without a plan has no limits: the partner has not priced it yet.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Allowance:
    """How much of one limited resource a client uses against its plan, as its pages show it."""

    plan: Plan | None
    resource: str
    used: int

    @property
    def limit(self) -> int | None:
        return getattr(self.plan, LIMITED_RESOURCES[self.resource][0]) if self.plan else None

    @property
    def noun(self) -> str:
        _, singular, plural = LIMITED_RESOURCES[self.resource]
        return singular if self.limit == 1 else plural

    @property
    def full(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    @property
    def message(self) -> str:
        return (
            f'Your plan "{self.plan.name}" includes {self.limit} {self.noun};'
            f" remove one or ask {self.plan.partner.name} to upgrade."
        )


def plan_allowance(*, client: Client, resource: str, used: int) -> Allowance:
    """`used` of `resource` against the client's plan as it is in the database now."""
    if resource not in LIMITED_RESOURCES:
        raise ValueError(f"Unknown plan resource {resource!r}; use one of {sorted(LIMITED_RESOURCES)}.")
    return Allowance(plan=plan_for(client), resource=resource, used=used)


def plan_limit_check(*, client: Client, resource: str, current_count: int) -> None:
    """Raise PlanLimitReached when the client already has as many `resource` as its plan includes.

    Call it before creating one more: `current_count` is how many exist now.
    """
    allowance = plan_allowance(client=client, resource=resource, used=current_count)
    if allowance.full:
        raise PlanLimitReached(allowance.message)


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


# --- Systems a plan includes -----------------------------------------------------------------------


def system_label(vendor: str) -> str:
    """The vendor's name as people know it ("NetSuite"), from its connector."""
    from connectors.registry import CONNECTORS

    cls = CONNECTORS.get(vendor)
    return cls.label if cls else vendor


def included_systems_errors(value) -> list[str]:
    """What is wrong with a plan's `included_systems` ({vendor key: connections}); none when it is sound."""
    from connectors.registry import CONNECTORS

    if not isinstance(value, dict):
        return ["List the systems as a mapping of system to number of connections."]
    problems = []
    for vendor, count in value.items():
        if vendor not in CONNECTORS:
            problems.append(f"{vendor!r} is not a system the portal connects to.")
        elif isinstance(count, bool) or not isinstance(count, int) or count < 1:
            problems.append(f"{system_label(vendor)}: include at least 1 connection, or leave the system out.")
    return problems


@dataclass(frozen=True)
class SystemAllowance:
    """One system's place in a client's plan: included or not, and connections used against those included."""

    plan: Plan | None
    vendor: str
    used: int

    @property
    def label(self) -> str:
        return system_label(self.vendor)

    @property
    def included(self) -> bool:
        return self.plan is None or not self.plan.limits_systems or self.vendor in self.plan.included_systems

    @property
    def limit(self) -> int | None:
        """Connections of this system the plan includes; None when only the plan's connection limit applies."""
        if self.plan is None or not self.plan.limits_systems:
            return None
        return self.plan.included_systems.get(self.vendor, 0)

    @property
    def full(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    @property
    def over(self) -> bool:
        return self.limit is not None and self.used > self.limit

    @property
    def message(self) -> str:
        ask = f"Ask {self.plan.partner.name} to change your plan."
        if not self.included:
            return f'Your plan "{self.plan.name}" does not include {self.label}. {ask}'
        noun = "connection" if self.limit == 1 else "connections"
        return f'Your plan "{self.plan.name}" includes {self.limit} {self.label} {noun}; you have {self.used}. {ask}'


def plan_system_allowances(*, client: Client, used: dict[str, int]) -> list[SystemAllowance]:
    """Every system the portal connects to, against the client's plan as it is in the database now; `used`
    is the client's connections by vendor key."""
    from connectors.registry import CONNECTORS

    plan = plan_for(client)
    return [SystemAllowance(plan=plan, vendor=vendor, used=used.get(vendor, 0)) for vendor in CONNECTORS]


def plan_system_check(*, client: Client, vendor: str, current_count: int) -> None:
    """Raise PlanLimitReached when the client's plan leaves `vendor` out, or includes no more connections of
    it than the `current_count` the client has: call it before connecting one more."""
    allowance = SystemAllowance(plan=plan_for(client), vendor=vendor, used=current_count)
    if allowance.full:
        raise PlanLimitReached(allowance.message)
