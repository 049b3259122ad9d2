"""Demo integrations for a client workspace: connections to the local vendor sandboxes and the
packaged flows their vendors can play, so `dev.py run` shows a working product from the first minute (Contoso on the first six
vendors, Tailspin on Dynamics 365, Business Central, Certinia and Workday)."""

from __future__ import annotations

import importlib

import requests
from django.conf import settings
from django_tenants.utils import tenant_context

from connectors.registry import get_connector_class
from connectors.sandbox.server import SANDBOX_PORTS
from integrations.catalog import TEMPLATES
from integrations.models import Connection, Flow, NotificationRecipient
from integrations.partner_templates.services import template_deploy, template_version_save
from integrations.services.account_health import ACCOUNT_HEALTH
from integrations.services.connections import connection_create
from integrations.services.flows import template_install
from integrations.services.runs import run_start
from tenants.models import Client, User

NAMES = {
    "kantata": "Kantata OX",
    "netsuite": "NetSuite",
    "bamboohr": "BambooHR",
    "hubspot": "HubSpot",
    "jira": "Jira",
    "dynamics365": "Dynamics 365 Sales",
    "businesscentral": "Business Central",
    "certinia": "Certinia PSA",
    "workday": "Workday",
}
# The systems a demo workspace runs, by role: Contoso the first six vendors', Tailspin Microsoft's CRM and ERP with
# Certinia and Workday.
DEFAULT_STACK = {"crm": "hubspot", "erp": "netsuite", "psa": "kantata", "hr": "bamboohr", "ticketing": "jira"}
MICROSOFT_STACK = {
    "crm": "dynamics365",
    "erp": "businesscentral",
    "psa": "certinia",
    "hr": "workday",
    "ticketing": "jira",
}
# The order the packaged templates are installed in (reference flows they share are made by the first).
INSTALL_ORDER = (
    "approved-time-to-invoice",
    "employee-to-resource",
    "lead-to-project",
    "ticket-time-to-psa",
    "account-health-to-crm",
)


def demo_integrations_seed(
    *, host: str = "127.0.0.1", recipients: list[str] = (), stack: dict[str, str] = DEFAULT_STACK
) -> list[Flow]:
    """Connect the workspace (the current schema) to the sandboxes of `stack` and install the packaged flows."""
    connections = {}
    for vendor in dict.fromkeys(stack.values()):
        connection = Connection.objects.filter(vendor=vendor).first()
        if connection is None:
            url = f"http://{host}:{SANDBOX_PORTS[vendor]}"
            credentials = dict(importlib.import_module(f"connectors.{vendor}.sandbox").DEMO_CREDENTIALS)
            if "authority" in {field.name for field in get_connector_class(vendor).form_fields()}:
                credentials["authority"] = url  # the Microsoft sandboxes sign in like Entra, at their own address
            connection = connection_create(name=NAMES[vendor], vendor=vendor, base_url=url, credentials=credentials)
        connections[vendor] = connection
    for email in recipients:
        NotificationRecipient.objects.get_or_create(email=email, defaults={"on_deal_won": True})
    flows = []
    for key in INSTALL_ORDER:
        roles = TEMPLATES[key].roles
        if any(stack[role] not in TEMPLATES[key].vendors(role) for role in roles):
            continue  # e.g. ticket time needs a PSA that takes time entries one by one, which Certinia does not
        flows += template_install(key=key, connections={role: connections[stack[role]] for role in roles})
    return flows


def demo_webhooks_subscribe(
    *, partner_host: str, port: int, sandbox_host: str = "127.0.0.1", sandbox_ports: dict[str, int] = SANDBOX_PORTS
) -> list[str]:
    """Point the sandbox CRM's deal webhooks at this workspace's flows that listen for them, as an admin does in
    HubSpot's app settings or Dynamics 365's Plug-in Registration tool, so winning a deal there
    (`POST /_sandbox/deals/win`, `POST /_sandbox/opportunities/win`) starts them at once.

    The sandboxes keep this in memory: it is done again each time `dev.py run` starts them. Returns the URLs.
    """
    import time

    import requests
    from django.db import connection as db
    from django.urls import reverse

    from portal.crypto import credentials_decrypt

    wanted = []  # (sandbox's registration URL, the registration, the key its list is under)
    for flow in Flow.objects.filter(
        trigger=Flow.Trigger.WEBHOOK, source_connection__vendor__in=("hubspot", "dynamics365")
    ):
        vendor = flow.source_connection.vendor
        path = reverse("flow_webhook", urlconf="portal.urls_partner", args=[db.tenant.slug, flow.webhook_token])
        url = f"http://{partner_host}:{port}{path}"
        registration: dict = {"url": url}
        if vendor == "dynamics365":  # Dataverse sends the webhook key the connection holds (WebhookKey: ?code=)
            key = credentials_decrypt(flow.source_connection.encrypted_credentials).get("webhook_secret", "")
            registration.update(auth="WebhookKey", value=key, messages=["Win"])
        listed = "subscriptions" if vendor == "hubspot" else "webhooks"
        wanted.append((f"http://{sandbox_host}:{sandbox_ports[vendor]}/_sandbox/webhooks", registration, listed))
    deadline = time.monotonic() + 20  # the sandboxes start alongside the seed
    for sandbox, registration, listed in wanted:
        while True:
            try:
                current = requests.get(sandbox, timeout=2).json().get(listed, [])
                if registration["url"] not in [entry if isinstance(entry, str) else entry["url"] for entry in current]:
                    requests.post(sandbox, json=registration, timeout=2).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    return [registration["url"] for _, registration, _ in wanted]


def demo_first_runs() -> int:
    """Queue a first run of each main flow that has never run (the worker picks them up).

    DEMO_FIRST_RUNS_SEED shuffles the order they are queued in (bench/fresh_starts.py): the end state must
    not depend on which first run gets the workspace's run slot first.
    """
    import os
    import random

    # Delivery health writes to the CRM what the other flows bring: queued beside their first runs it would write
    # figures of an empty workspace. Its daily schedule (or Run now on its page) writes it once they have run.
    flows = list(
        Flow.objects.filter(dependents__isnull=True, steps__isnull=False)
        .exclude(entity=ACCOUNT_HEALTH)
        .distinct()
        .order_by("name")
    )
    seed = os.environ.get("DEMO_FIRST_RUNS_SEED")
    if seed:
        random.Random(seed).shuffle(flows)
    started = 0
    for flow in flows:
        if not flow.runs.exists():
            run_start(flow=flow, trigger="manual")
            started += 1
    return started


# --- The demo platform's workspaces (after tenants.demo.demo_seed) ----------------------------------


def demo_integrations(stdout=None, first_runs: bool = False) -> None:
    """Contoso and Tailspin get connections to the local sandboxes and the three packaged flows: Contoso on
    HubSpot, NetSuite, Kantata and BambooHR, Tailspin on Dynamics 365, Business Central, Certinia and Workday."""
    contoso = Client.objects.filter(slug="contoso", partner__slug="northwind").first()
    if contoso is None:
        return
    tailspin = Client.objects.filter(slug="tailspin", partner__slug="northwind").first()
    for client, stack in ((contoso, DEFAULT_STACK), (tailspin, MICROSOFT_STACK)):
        if client is None:
            continue
        with tenant_context(client):
            demo_integrations_seed(
                host=settings.DEMO_SANDBOX_HOST, recipients=[f"finance@{client.slug}.localhost"], stack=stack
            )
            if first_runs:
                queued = demo_first_runs()
                if stdout and queued:
                    stdout.write(f"  queued {queued} first sync run(s) in {client.name}\n")
                _demo_webhooks(client, stdout)
    demo_partner_template(contoso)


def _demo_webhooks(client: Client, stdout=None) -> None:
    """The sandbox CRM tells the workspace's webhook flows of won deals (see README, "Win a deal")."""
    domain = client.partner.domains.filter(is_primary=True).values_list("domain", flat=True).first()
    port = int(getattr(settings, "PUBLIC_PORT", "") or 8000)
    try:
        urls = demo_webhooks_subscribe(partner_host=domain, port=port, sandbox_host=settings.DEMO_SANDBOX_HOST)
    except requests.RequestException as error:
        if stdout:
            stdout.write(f"  the sandbox CRM did not take {client.name}'s webhook address: {error}\n")
        return
    if stdout and urls:
        stdout.write(f"  the sandbox CRM delivers {client.name}'s won deals to {', '.join(urls)}\n")


def demo_partner_template(contoso: Client) -> None:
    """Northwind's own template, saved from Contoso's approved-time flow and offered to Tailspin,
    so the partner console's Templates page starts with something to deploy and upgrade."""
    partner = contoso.partner
    if partner.integration_templates.exists():
        return
    with tenant_context(contoso):
        flow = Flow.objects.filter(template_key="approved-time-to-invoice/approved-time").first()
    if flow is None:
        return
    admin = User.objects.get(email="admin@northwind.localhost")
    version = template_version_save(
        partner=partner,
        client=contoso,
        flow_id=flow.pk,
        actor=admin,
        name="Time to invoice (Northwind standard)",
        summary="Approved PSA time becomes ERP invoices per project and month, with Northwind's project-code map.",
        notes="First version, from Contoso Engineering.",
    )
    tailspin = Client.objects.filter(partner=partner, slug="tailspin").first()
    if tailspin is not None:
        template_deploy(template=version.template, version=version, clients=[tailspin], actor=admin)
