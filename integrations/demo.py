"""Demo integrations for a client workspace: connections to the local vendor sandboxes and the
three packaged flows, so `dev.py run` shows a working product from the first minute."""

from __future__ import annotations

import importlib

from connectors.sandbox.server import SANDBOX_PORTS
from integrations.models import Connection, Flow, NotificationRecipient
from integrations.services.connections import connection_create
from integrations.services.flows import template_install
from integrations.services.runs import run_start

NAMES = {"kantata": "Kantata OX", "netsuite": "NetSuite", "bamboohr": "BambooHR", "hubspot": "HubSpot", "jira": "Jira"}


def demo_integrations_seed(*, host: str = "127.0.0.1", recipients: list[str] = ()) -> list[Flow]:
    """Connect the workspace (the current schema) to the sandboxes and install the packaged flows."""
    connections = {}
    for vendor, name in NAMES.items():
        connection = Connection.objects.filter(vendor=vendor).first()
        if connection is None:
            credentials = dict(importlib.import_module(f"connectors.{vendor}.sandbox").DEMO_CREDENTIALS)
            connection = connection_create(
                name=name, vendor=vendor, base_url=f"http://{host}:{SANDBOX_PORTS[vendor]}", credentials=credentials
            )
        connections[vendor] = connection
    for email in recipients:
        NotificationRecipient.objects.get_or_create(email=email, defaults={"on_deal_won": True})
    flows = []
    flows += template_install(
        key="approved-time-to-invoice", connections={"psa": connections["kantata"], "erp": connections["netsuite"]}
    )
    flows += template_install(
        key="employee-to-resource",
        connections={"hr": connections["bamboohr"], "psa": connections["kantata"], "erp": connections["netsuite"]},
    )
    flows += template_install(
        key="lead-to-project",
        connections={
            "crm": connections["hubspot"],
            "erp": connections["netsuite"],
            "psa": connections["kantata"],
            "ticketing": connections["jira"],
        },
    )
    return flows


def demo_first_runs() -> int:
    """Queue a first run of each main flow that has never run (the worker picks them up)."""
    started = 0
    for flow in Flow.objects.filter(dependents__isnull=True).exclude(name__endswith="(reference)"):
        if not flow.runs.exists():
            run_start(flow=flow, trigger="manual")
            started += 1
    return started
