"""A client admin installs a packaged template on the page with the newer systems in their roles: the install
form offers each connection the role accepts, and the flows it makes read and write those vendors' objects."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from integrations.models import Flow
from integrations.services.connections import connection_create
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


def connect(vendor: str):
    credentials = dict(importlib.import_module(f"connectors.{vendor}.sandbox").DEMO_CREDENTIALS)
    return connection_create(name=vendor, vendor=vendor, base_url="https://sandbox.example", credentials=credentials)


def test_lead_to_project_installs_on_dynamics_business_central_certinia_and_jira(world):
    connection.set_tenant(world.clients["contoso"])
    try:
        chosen = {
            role: connect(vendor)
            for role, vendor in (
                ("crm", "dynamics365"),
                ("erp", "businesscentral"),
                ("psa", "certinia"),
                ("ticketing", "jira"),
            )
        }
        others = {"crm": connect("hubspot"), "erp": connect("intacct")}
    finally:
        connection.set_schema_to_public()
    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)

    page = admin.get("/c/contoso/flows/install/lead-to-project").content.decode()
    installed = admin.post("/c/contoso/flows/install/lead-to-project", {role: made.pk for role, made in chosen.items()})

    # Each role offers every connection whose vendor can play it.
    for made in [*chosen.values(), *others.values()]:
        assert f'value="{made.pk}"' in page
    assert installed.status_code == 302, installed.content.decode()[:2000]
    connection.set_tenant(world.clients["contoso"])
    try:
        flows = {
            f.template_key.split("/")[1]: f for f in Flow.objects.filter(template_key__startswith="lead-to-project/")
        }
        deals = flows["won-deals"]
        assert (deals.source_connection.vendor, deals.source_object) == ("dynamics365", "opportunities")
        assert {(s.target_connection.vendor, s.target_object) for s in deals.steps.exclude(target_connection=None)} == {
            ("businesscentral", "customers"),
            ("businesscentral", "projects"),
            ("certinia", "pse__Proj__c"),
            ("jira", "issues"),
        }
        assert {(f.source_connection.vendor, f.source_object) for k, f in flows.items() if k != "won-deals"} == {
            ("dynamics365", "accounts"),
            ("businesscentral", "customers"),
            ("businesscentral", "projects"),
            ("certinia", "Account"),
            ("certinia", "pse__Proj__c"),
            ("jira", "issues"),
        }
    finally:
        connection.set_schema_to_public()
