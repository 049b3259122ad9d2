"""The packaged templates as data: what a partner's saved template version stores must install the same way,
and a template names roles, so each role takes every vendor that has a profile for it."""

import json

import pytest

from integrations.catalog import PARTNER_TEMPLATE_PREFIX, TEMPLATES, Template
from integrations.engine.entities import ENTITIES


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_a_template_survives_its_json_spec_unchanged(key):
    packaged = TEMPLATES[key]
    template = packaged.for_vendors(packaged.default_vendors)
    spec = json.loads(json.dumps(packaged.to_spec()))  # as a JSONField stores it
    again = Template.from_spec(
        spec, key=template.key, name=template.name, summary=template.summary, version=template.version
    )
    assert again == template


def test_lead_to_project_takes_salesforce_as_its_crm():
    template = TEMPLATES["lead-to-project"]
    assert {"hubspot", "salesforce"} <= set(template.connections["crm"][0])
    with_salesforce = template.for_vendors({"crm": "salesforce"})
    deals = next(flow for flow in with_salesforce.flows if flow.key == "won-deals")
    companies = next(flow for flow in with_salesforce.flows if flow.key == "crm-companies")
    assert (deals.object, companies.object) == ("Opportunity", "Account")
    assert deals.source_filter == {"path": "StageName", "in": ["Closed Won"]}
    assert with_salesforce.connections["crm"][0] == ("salesforce",)


def test_every_system_a_template_writes_to_is_read_first():
    for packaged in TEMPLATES.values():
        for role_vendors in _every_combination(packaged):
            template = packaged.for_vendors(role_vendors)
            references = {(flow.source, flow.object) for flow in template.flows if not flow.steps}
            for flow in template.flows:
                for step in flow.steps:
                    if step.action == "write" and _recognisable(step.entity):
                        assert (step.target, step.object) in references, (packaged.key, step.name)


def _recognisable(entity: str) -> bool:
    """Whether another system's record of `entity` could be recognised as ours before we write it. A time entry
    cannot (no code, email or name identifies one): the one a flow writes is found again by the reference the
    flow left on it, so there is nothing to read first. A step the engine does not run (delivery figures written to
    CRM accounts) counts as recognisable: the accounts it writes to must be read first too."""
    spec = ENTITIES.get(entity)
    return spec is None or bool(spec.natural_key or spec.match_keys or spec.identity)


def test_ticket_time_is_written_to_the_psa_only_after_its_projects_and_people_were_read():
    for vendors in _every_combination(TEMPLATES["ticket-time-to-psa"]):
        flows = TEMPLATES["ticket-time-to-psa"].for_vendors(vendors).flows
        main = next(flow for flow in flows if flow.steps)
        references = {flow.key: flow for flow in flows if not flow.steps}
        assert {"psa-projects", "psa-people"} <= set(main.prerequisites) <= set(references)
        assert [step.entity for step in main.steps] == ["time_entry"]


def test_a_ticketing_system_without_staffing_requests_is_offered_for_ticket_time_only():
    assert "asana" not in TEMPLATES["lead-to-project"].connections["ticketing"][0]
    assert "asana" in TEMPLATES["ticket-time-to-psa"].connections["ticketing"][0]
    assert TEMPLATES["ticket-time-to-psa"].connections["psa"][0] == ("kantata",)  # Certinia takes weekly timecards
    with pytest.raises(KeyError, match="asana cannot play the ticketing role"):
        TEMPLATES["lead-to-project"].for_vendors({"ticketing": "asana"})


def _every_combination(packaged):
    combos = [{}]
    for role in packaged.roles:
        combos = [{**combo, role: vendor} for combo in combos for vendor in packaged.vendors(role)]
    return combos


def test_no_packaged_template_key_can_be_taken_for_a_partners():
    assert not any(key.startswith(PARTNER_TEMPLATE_PREFIX) for key in TEMPLATES)


@pytest.mark.parametrize(
    ("role", "vendor", "templates"),
    [
        ("crm", "dynamics365", {"lead-to-project", "account-health-to-crm"}),
        ("erp", "businesscentral", {"lead-to-project", "approved-time-to-invoice", "employee-to-resource"}),
        ("erp", "intacct", {"lead-to-project", "approved-time-to-invoice", "employee-to-resource"}),
        ("erp", "acumatica", {"lead-to-project", "approved-time-to-invoice", "employee-to-resource"}),
        ("psa", "certinia", {"lead-to-project", "approved-time-to-invoice", "employee-to-resource"}),
        ("psa", "kimble", {"lead-to-project", "approved-time-to-invoice", "employee-to-resource"}),
        ("psa", "float", {"lead-to-project", "employee-to-resource"}),
        ("hr", "workday", {"employee-to-resource"}),
        ("hr", "adp", {"employee-to-resource"}),
        ("ticketing", "jira", {"lead-to-project", "ticket-time-to-psa"}),
        ("ticketing", "asana", {"ticket-time-to-psa"}),
        ("ticketing", "monday", {"ticket-time-to-psa"}),
        ("ticketing", "servicenow", {"ticket-time-to-psa"}),
    ],
)
def test_each_new_system_plays_its_role_in_every_packaged_flow_that_has_it(role, vendor, templates):
    from connectors.registry import get_connector_class

    connector = get_connector_class(vendor)
    assert {
        key for key, packaged in TEMPLATES.items() if vendor in packaged.connections.get(role, ((),))[0]
    } == templates
    for key in templates:
        template = TEMPLATES[key].for_vendors({role: vendor})
        assert template.connections[role][0] == (vendor,)
        for flow in template.flows:
            # Every object a flow reads from or writes to is one the vendor's connector offers.
            if flow.source == role:
                assert flow.object in connector.objects, (key, flow.key, flow.object)
            for step in flow.steps:
                if step.target == role and step.action in ("write", "invoice"):
                    assert connector.objects[step.object].writable, (key, step.name)


def test_reference_flows_read_every_new_erp_and_psa_before_writing_there():
    for vendor, keys in (
        ("businesscentral", {"erp-customers", "erp-projects", "erp-employees"}),
        ("intacct", {"erp-customers", "erp-projects", "erp-employees"}),
        ("acumatica", {"erp-customers", "erp-projects", "erp-employees"}),
        ("certinia", {"psa-customers", "psa-projects", "psa-people"}),
        ("kimble", {"psa-customers", "psa-projects", "psa-people"}),
        ("float", {"psa-projects", "psa-people"}),
    ):
        role = "erp" if keys & {"erp-customers"} else "psa"
        flows = {
            flow.key
            for key in TEMPLATES
            if role in TEMPLATES[key].roles and vendor in TEMPLATES[key].vendors(role)
            for flow in TEMPLATES[key].for_vendors({role: vendor}).flows
            if not flow.steps and flow.source == role
        }
        assert flows == keys, vendor


def test_float_is_offered_as_the_psa_of_the_templates_its_profile_serves_and_of_no_other():
    assert "float" in TEMPLATES["lead-to-project"].vendors("psa")
    assert "float" in TEMPLATES["employee-to-resource"].vendors("psa")
    assert "float" not in TEMPLATES["approved-time-to-invoice"].vendors("psa")
    assert "float" not in TEMPLATES["ticket-time-to-psa"].vendors("psa")
    with pytest.raises(KeyError, match="float cannot play the psa role"):
        TEMPLATES["approved-time-to-invoice"].for_vendors({"psa": "float"})


@pytest.mark.django_db
def test_the_install_page_offers_a_float_connection_for_projects_and_people_but_not_for_approved_time(world):
    from django.db import connection

    from integrations.services.connections import connection_create
    from tests.support import NORTHWIND, browser_for

    connection.set_tenant(world.clients["contoso"])
    try:
        connection_create(name="Float scheduling", vendor="float", base_url="http://127.0.0.1:8115",
                          credentials={"token": "t", "app_name": "Portal", "contact_email": "it@contoso.example"})  # fmt: skip
    finally:
        connection.set_schema_to_public()
    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    pages = {
        key: admin.get(f"/c/contoso/flows/install/{key}").content.decode()
        for key in ("lead-to-project", "employee-to-resource", "approved-time-to-invoice")
    }
    assert "Float scheduling" in pages["lead-to-project"] and "Float scheduling" in pages["employee-to-resource"]
    assert "Float scheduling" not in pages["approved-time-to-invoice"]
    assert "Float" not in pages["approved-time-to-invoice"].split("PSA (time and expenses)", 1)[1].split("</select>")[0]
