"""What the partner template tests share: Contoso's approved-time flow as the source, connections for the
receiving clients, a saved first version, and installing a deployed template as a client's admin."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from integrations.models import Connection, Flow, ValueMap, ValueMapEntry
from integrations.partner_templates.services import (
    template_version_save,
)
from integrations.services.connections import connection_create
from integrations.services.flows import template_install
from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials
from tests.support import NORTHWIND, browser_for

PARTNER_ADMIN = "admin@northwind.localhost"
STAFF = "engineer@northwind.localhost"


def connect(vendors=("kantata", "netsuite")) -> dict[str, Connection]:
    """This schema's own connections to the systems the template needs (never reached in these tests)."""
    return {
        vendor: connection_create(
            name=f"{vendor.title()} ({connection.tenant.slug})",
            vendor=vendor,
            base_url=UNREACHABLE,
            credentials=demo_credentials(vendor),
        )
        for vendor in vendors
    }


def source_flow(client) -> int:
    """Contoso's approved-time flow, installed from the packaged template, with a project code mapped."""
    with tenant_context(client):
        own = connect()
        flows = template_install(
            key="approved-time-to-invoice", connections={"psa": own["kantata"], "erp": own["netsuite"]}
        )
        project_codes = ValueMap.objects.get(key="project-codes")
        ValueMapEntry.objects.create(value_map=project_codes, source_value="OLD-1", target_value="PRJ-101")
        return next(f for f in flows if f.template_key.endswith("/approved-time")).pk


@pytest.fixture
def saved(world):
    """Version 1 of “Time to invoice”, saved from Contoso's approved-time flow."""
    contoso = world.clients["contoso"]
    flow_id = source_flow(contoso)
    version = template_version_save(
        partner=world.partners["northwind"],
        client=contoso,
        flow_id=flow_id,
        actor=world.user(PARTNER_ADMIN),
        name="Time to invoice",
        summary="Approved time becomes invoices per project and month.",
    )
    version.flow_id = flow_id
    return version


def next_version(world, saved):
    """The template's next version, saved again from Contoso's approved-time flow as it is now."""
    return template_version_save(
        partner=saved.template.partner,
        client=world.clients["contoso"],
        flow_id=saved.flow_id,
        actor=world.user(PARTNER_ADMIN),
        template=saved.template,
    )


def install_in(client, template_key: str, user_email: str, world) -> list[Flow]:
    """The client installs the deployed template with its own connections, through its Flows page."""
    with tenant_context(client):
        own = connect()
    browser = browser_for(world.user(user_email), host=NORTHWIND)
    listing = browser.get(f"/c/{client.slug}/flows/").content.decode()
    assert "From Northwind Advisory" in listing and f'data-testid="install-{template_key}"' in listing
    response = browser.post(
        f"/c/{client.slug}/flows/install/{template_key}", {"psa": own["kantata"].pk, "erp": own["netsuite"].pk}
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    connection.set_schema_to_public()
    with tenant_context(client):
        return list(Flow.objects.filter(template_key__startswith=f"{template_key}/"))
