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
    # Reference flows reading the same records are shared between templates: one per system and object.
    wanted = {(flow.source, flow.object) for t in TEMPLATES.values() for flow in t.flows}
    assert Flow.objects.count() == len(wanted)


def test_demo_partner_offers_its_own_template_to_tailspin(world):
    from tenants.demo import demo_integrations
    from tenants.models import TemplateDeployment

    northwind = world.partners["northwind"]
    demo_integrations()
    demo_integrations()  # again: nothing twice
    (template,) = northwind.integration_templates.all()
    assert template.versions.count() == 1
    offers = TemplateDeployment.objects.filter(template=template)
    assert [(offer.client.slug, offer.version.number) for offer in offers] == [("tailspin", 1)]
