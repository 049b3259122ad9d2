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
    assert Flow.objects.count() == sum(len(t.flows) for t in TEMPLATES.values())
