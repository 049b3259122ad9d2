"""The demo workspace installs every packaged flow with the sandboxes' connections."""

import pytest

from integrations.catalog import TEMPLATES
from integrations.demo import demo_integrations_seed
from integrations.models import Flow

pytestmark = pytest.mark.django_db


def test_demo_installs_every_packaged_template(world):
    from django.db import connection

    connection.set_tenant(world.clients["contoso"])  # on the Professional plan, like the demo
    demo_integrations_seed(recipients=["finance@wingtip.localhost"])
    installed = {key.split("/")[0] for key in Flow.objects.values_list("template_key", flat=True)}
    assert installed == set(TEMPLATES)
    demo_integrations_seed()  # again: nothing twice
    # Reference flows reading the same records are shared between templates: one per system, object and entity
    # (delivery health reads CRM companies too, to write figures to them: a flow of its own).
    wanted = {(flow.source, flow.object, flow.entity) for t in TEMPLATES.values() for flow in t.flows}
    assert Flow.objects.count() == len(wanted)


def test_demo_partner_offers_its_own_template_to_tailspin(world):
    from integrations.demo import demo_integrations
    from tenants.models import TemplateDeployment

    northwind = world.partners["northwind"]
    demo_integrations()
    demo_integrations()  # again: nothing twice
    (template,) = northwind.integration_templates.all()
    assert template.versions.count() == 1
    offers = TemplateDeployment.objects.filter(template=template)
    assert [(offer.client.slug, offer.version.number) for offer in offers] == [("tailspin", 1)]


def test_tailspin_runs_the_packaged_flows_on_the_microsoft_certinia_workday_stack(world):
    from django.db import connection

    from integrations.demo import MICROSOFT_STACK
    from integrations.models import Connection

    connection.set_tenant(world.clients["tailspin"])
    demo_integrations_seed(recipients=["finance@tailspin.localhost"], stack=MICROSOFT_STACK)
    flows = Flow.objects.count()
    demo_integrations_seed(stack=MICROSOFT_STACK)  # again: nothing twice

    assert Flow.objects.count() == flows
    assert sorted(Connection.objects.values_list("vendor", flat=True)) == sorted(set(MICROSOFT_STACK.values()))
    installed = {key.split("/")[0] for key in Flow.objects.values_list("template_key", flat=True)}
    # Every template but ticket time, which needs a PSA taking time entries one by one (Certinia takes timecards).
    assert installed == set(TEMPLATES) - {"ticket-time-to-psa"}
    sources = {(f.template_key.split("/")[1], f.source_connection.vendor, f.source_object) for f in Flow.objects.all()}
    assert {
        ("won-deals", "dynamics365", "opportunities"),
        ("approved-time", "certinia", "timecard_days"),
        ("employees", "workday", "workers"),
        ("erp-customers", "businesscentral", "customers"),
    } <= sources
    connection.set_schema_to_public()


def test_tailspins_won_deals_flow_hears_dynamics_365_win_its_deals(world, allow_sandboxes):
    """The demo registers Tailspin's webhook flow in the Dynamics 365 sandbox with the connection's webhook key;
    a deal won there is delivered, and the flow's webhook address takes the delivery and starts a run."""
    import requests
    from django.db import connection

    from integrations.demo import MICROSOFT_STACK, demo_webhooks_subscribe
    from integrations.models import SyncRun
    from tests.support import NORTHWIND, browser_for

    dynamics = allow_sandboxes["dynamics365"]
    dynamics.reset()
    requests.delete(f"{dynamics.url}/_sandbox/webhooks", timeout=5).raise_for_status()
    connection.set_tenant(world.clients["tailspin"])
    demo_integrations_seed(stack=MICROSOFT_STACK)
    # Port 9 (discard) on loopback: the sandbox's own delivery goes nowhere; the test hands it to the portal.
    (url,) = demo_webhooks_subscribe(partner_host="127.0.0.1", port=9, sandbox_ports={"dynamics365": dynamics.port})
    assert demo_webhooks_subscribe(partner_host="127.0.0.1", port=9, sandbox_ports={"dynamics365": dynamics.port})
    flow = Flow.objects.get(template_key="lead-to-project/won-deals")
    connection.set_schema_to_public()

    registered = requests.get(f"{dynamics.url}/_sandbox/webhooks", timeout=5).json()["webhooks"]
    assert [(hook["url"], hook["auth"]) for hook in registered] == [(url, "WebhookKey")]  # once, however often run
    requests.post(f"{dynamics.url}/_sandbox/opportunities/win", json={}, timeout=5).raise_for_status()
    (delivery,) = requests.get(f"{dynamics.url}/_sandbox/webhooks", timeout=5).json()["deliveries"]
    path = delivery["url"].split(":9", 1)[1]
    answer = browser_for(host=NORTHWIND).post(
        path,
        data=delivery["body"].encode(),
        content_type="application/json",
        **{
            f"HTTP_{name.upper().replace('-', '_')}": value
            for name, value in delivery["headers"].items()
            if name.lower() != "content-type"
        },
    )

    assert answer.status_code == 202, answer.content
    connection.set_tenant(world.clients["tailspin"])
    assert SyncRun.objects.filter(flow=flow, trigger="webhook").exists()
    connection.set_schema_to_public()
