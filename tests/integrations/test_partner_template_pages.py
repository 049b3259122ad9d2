"""The partner template pages: the list and save forms, value maps saved with or without their entries, rename,
withdraw and delete, and what a partner types rendered inert.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from integrations.models import AuditEvent, Flow, MappingRule, ValueMap
from integrations.partner_templates.services import (
    TemplateRefused,
    deployment_withdraw,
    deployments_upgrade,
    template_delete,
    template_deploy,
    template_version_save,
)
from tenants.models import IntegrationTemplate, IntegrationTemplateVersion, TemplateDeployment
from tests.integrations.partner_templates_support import (  # noqa: F401 -- fixtures
    PARTNER_ADMIN,
    STAFF,
    connect,
    install_in,
    next_version,
    saved,
    source_flow,
)
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


def test_the_template_list_says_what_to_do_when_empty(world):
    page = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND).get("/partner/templates/").content.decode()
    assert "No templates yet" in page and "Save a client's flow as a template" in page
    page = browser_for(world.user(STAFF), host=NORTHWIND).get("/partner/templates/").content.decode()
    assert "No templates yet" in page and "/partner/templates/new" not in page


def test_choosing_a_client_lists_its_flows_that_write_somewhere(world):
    flow_id = source_flow(world.clients["contoso"])
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    form = admin.get(
        "/partner/templates/new", {"client": world.clients["contoso"].pk}, headers={"HX-Request": "true"}
    ).content.decode()
    assert form.lstrip().startswith("<form")  # the form alone, for HTMX to swap
    assert f'value="{flow_id}"' in form and "Approved time to invoices · reads Kantata (" in form
    assert "(reference)" not in form
    empty = admin.get("/partner/templates/new", {"client": world.clients["wingtip"].pk}).content.decode()
    assert "Wingtip Partners has no flow that writes to a system yet" in empty


def test_the_save_form_lists_the_value_maps_the_flow_carries_with_their_entry_counts(world):
    contoso = world.clients["contoso"]
    flow_id = source_flow(contoso)
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    form = admin.get(
        "/partner/templates/new", {"client": contoso.pk, "flow": flow_id}, headers={"HX-Request": "true"}
    ).content.decode()
    maps = form[form.index('id="template-value-maps"') :]
    maps = maps[: maps.index("</fieldset>")]
    assert "Project codes (PSA → ERP)</strong>: include its 1 entry" in maps
    assert re.search(r'name="include_entries" value="project-codes"[^>]*checked', maps)  # entries go by default
    assert "offered to every client that installs it" in maps
    # Choosing the client alone shows the maps of the flow its select shows first.
    assert 'id="template-value-maps"' in admin.get("/partner/templates/new", {"client": contoso.pk}).content.decode()


def save_from_contoso(world, flow_id: int, **choices) -> IntegrationTemplateVersion:
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    data = {"client": world.clients["contoso"].pk, "flow": flow_id, "name": "Time to invoice", **choices}
    response = admin.post("/partner/templates/new", data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    return IntegrationTemplateVersion.objects.get(template__key="time-to-invoice", number=1)


def test_a_map_saved_without_its_entries_reaches_installing_clients_empty(world):
    contoso, tailspin = world.clients["contoso"], world.clients["tailspin"]
    flow_id = source_flow(contoso)
    version = save_from_contoso(world, flow_id, value_maps_shown=["project-codes"])  # shown, not ticked
    assert [(vm["key"], vm["entries"]) for vm in version.spec["value_maps"]] == [("project-codes", [])]
    with tenant_context(contoso):
        saved_audit = AuditEvent.objects.get(action="template.saved")
        assert saved_audit.after["value_maps_without_entries"] == ["project-codes"]
        assert ValueMap.objects.get(key="project-codes").as_dict() == {"OLD-1": "PRJ-101"}  # Contoso keeps its own

    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{version.template.pk}/").content.decode()
    assert re.search(r"<dt>Value-map entries</dt><dd>0</dd>", page)
    assert re.search(r"<dt>Value maps carried empty</dt><dd>Project codes \(PSA → ERP\)</dd>", page)

    template_deploy(template=version.template, version=version, clients=[tailspin], actor=world.user(PARTNER_ADMIN))
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    with tenant_context(tailspin):
        assert ValueMap.objects.get(key="project-codes").as_dict() == {}


def test_a_ticked_map_or_a_form_that_never_listed_maps_keeps_the_entries(world):
    flow_id = source_flow(world.clients["contoso"])
    version = save_from_contoso(world, flow_id, value_maps_shown=["project-codes"], include_entries=["project-codes"])
    assert version.spec["value_maps"][0]["entries"] == [["OLD-1", "PRJ-101"]]
    version.template.delete()
    version = save_from_contoso(world, flow_id)
    assert version.spec["value_maps"][0]["entries"] == [["OLD-1", "PRJ-101"]]


def test_a_version_needing_a_system_the_client_lacks_waits_until_it_connects_one(world, saved):
    from integrations.models import FlowStep, Mapping

    tailspin, contoso = world.clients["tailspin"], world.clients["contoso"]
    template, admin = saved.template, world.user(PARTNER_ADMIN)
    template_deploy(template=template, version=saved, clients=[tailspin], actor=admin)
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    # Contoso's flow gains a step: a Jira issue per time entry.
    with tenant_context(contoso):
        jira = connect(("jira",))["jira"]
        mapping = Mapping.objects.create(name="Time entries: Jira")
        MappingRule.objects.create(mapping=mapping, target="summary", sources=["notes"], transforms=[], label="Summary")
        FlowStep.objects.create(
            flow_id=saved.flow_id,
            order=5,
            name="Issue in Jira",
            entity="time_entry",
            target_connection=jira,
            target_object="issues",
            outbound_mapping=mapping,
        )
    version_2 = template_version_save(
        partner=template.partner, client=contoso, flow_id=saved.flow_id, actor=admin, template=template
    )
    assert version_2.spec["connections"]["ticketing"] == {"vendors": ["jira"], "label": "Ticketing"}

    [outcome] = deployments_upgrade(template=template, version=version_2, actor=admin)
    assert outcome.message == (
        "Tailspin Consulting: Version 2 also needs Ticketing (Jira): connect one in this workspace first."
    )
    with tenant_context(tailspin):
        jira = connect(("jira",))["jira"]
    [outcome] = deployments_upgrade(template=template, version=version_2, actor=admin)
    assert not outcome.refused and outcome.result.rules_changed == 1
    with tenant_context(tailspin):
        main = Flow.objects.get(template_key="p-time-to-invoice/approved-time")
        steps = list(main.steps.select_related("target_connection"))
        assert [(s.name, s.target_connection.name) for s in steps] == [
            ("Invoice per project and month", "Netsuite (tailspin)"),
            ("Issue in Jira", "Jira (tailspin)"),
        ]
        assert list(steps[1].outbound_mapping.rules.values_list("target", flat=True)) == ["summary"]


# --- Rename, withdraw, delete, and what the deploy form says of each client ----------------------


def audit_summaries(client, action: str) -> list[str]:
    with tenant_context(client):
        return list(AuditEvent.objects.filter(action=action).order_by("pk").values_list("summary", flat=True))


def test_renaming_a_template_is_audited_where_clients_see_it_and_they_read_the_new_words(world, saved):
    template, tailspin = saved.template, world.clients["tailspin"]
    template_deploy(template=template, version=saved, clients=[tailspin], actor=world.user(PARTNER_ADMIN))
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert 'id="template-edit-form"' in page and 'value="Time to invoice"' in page

    response = admin.post(
        f"/partner/templates/{template.pk}/edit",
        {"name": "Time to invoices", "summary": "Approved  time,\n invoiced monthly."},
        follow=True,
    )
    assert "“Time to invoice” is now called “Time to invoices”. Clients see the new name." in response.content.decode()
    template.refresh_from_db()
    assert (template.name, template.summary) == ("Time to invoices", "Approved time, invoiced monthly.")
    assert template.key == "time-to-invoice"  # installed flows are found by the key, which never changes
    expected = "Northwind Advisory renamed template “Time to invoice” to “Time to invoices”"
    for client in (tailspin, world.clients["contoso"]):  # offered it; it was saved from here
        assert audit_summaries(client, "template.updated") == [expected]
    assert audit_summaries(world.clients["wingtip"], "template.updated") == []
    with tenant_context(tailspin):
        event = AuditEvent.objects.get(action="template.updated")
        assert event.actor_email == PARTNER_ADMIN and event.before["name"] == "Time to invoice"
    listing = browser_for(world.user("admin@tailspin.localhost"), host=NORTHWIND).get("/c/tailspin/flows/")
    assert "Time to invoices" in listing.content.decode() and "invoiced monthly" in listing.content.decode()

    # An empty or multi-line name is refused in the form's own partial; nothing changes.
    response = admin.post(
        f"/partner/templates/{template.pk}/edit", {"name": "Two\nlines", "summary": ""}, headers={"HX-Request": "true"}
    )
    form = response.content.decode()
    assert form.lstrip().startswith("<form") and "Use a single line of text." in form
    assert admin.post(f"/partner/templates/{template.pk}/edit", {"name": " ", "summary": ""}).status_code == 422
    template.refresh_from_db()
    assert template.name == "Time to invoices"


def test_withdrawing_an_offer_the_client_has_not_installed_takes_it_off_its_flows_page(world, saved):
    template, tailspin, wingtip = saved.template, world.clients["tailspin"], world.clients["wingtip"]
    template_deploy(template=template, version=saved, clients=[tailspin, wingtip], actor=world.user(PARTNER_ADMIN))
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert 'data-testid="withdraw-wingtip"' in page and 'data-testid="withdraw-tailspin"' not in page
    assert re.search(r'data-confirm="Withdraw “Time to invoice” from Wingtip Partners\? Its Flows page stops', page)
    assert "keeps its flows, which are its own now" in page

    wingtip_offer = template.deployments.get(client=wingtip)
    response = admin.post(f"/partner/templates/{template.pk}/deployments/{wingtip_offer.pk}/withdraw", follow=True)
    assert "“Time to invoice” is withdrawn from Wingtip Partners: its Flows page no longer offers it." in (
        response.content.decode()
    )
    assert not template.deployments.filter(client=wingtip).exists()
    assert audit_summaries(wingtip, "template.withdrawn") == [
        "Northwind Advisory withdrew its offer of “Time to invoice” v1"
    ]
    connection.set_schema_to_public()
    wingtip_admin = admin  # Wingtip has no admin of its own; the partner admin works in its workspace
    assert "From Northwind Advisory" not in wingtip_admin.get("/c/wingtip/flows/").content.decode()
    assert wingtip_admin.get("/c/wingtip/flows/install/p-time-to-invoice").status_code == 404

    # Tailspin installed it: its flows are its own, so the offer stays and so do they.
    tailspin_offer = template.deployments.get(client=tailspin)
    response = admin.post(f"/partner/templates/{template.pk}/deployments/{tailspin_offer.pk}/withdraw", follow=True)
    assert (
        "Tailspin Consulting has installed “Time to invoice”: its flows are its own now and stay."
        " You can upgrade it, not withdraw it."
    ) in response.content.decode()
    assert template.deployments.filter(client=tailspin).exists()
    with tenant_context(tailspin):
        assert Flow.objects.filter(template_key="p-time-to-invoice/approved-time", template_version=1).exists()
    with pytest.raises(TemplateRefused):
        deployment_withdraw(deployment=tailspin_offer, actor=world.user(PARTNER_ADMIN))


def test_a_template_a_client_runs_is_not_deleted_and_the_page_names_who_runs_it(world, saved):
    template, tailspin = saved.template, world.clients["tailspin"]
    template_deploy(template=template, version=saved, clients=[tailspin], actor=world.user(PARTNER_ADMIN))
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert "Tailspin Consulting runs it. Their flows are their own; once no client runs it, you can delete it." in page
    assert 'data-testid="delete-template"' not in page

    response = admin.post(f"/partner/templates/{template.pk}/delete", follow=True)
    assert (
        "“Time to invoice” cannot be deleted while Tailspin Consulting runs it. Their flows are their own;"
        " once no client runs it, you can delete it."
    ) in response.content.decode()
    assert IntegrationTemplate.objects.filter(pk=template.pk).exists()
    with tenant_context(tailspin):
        assert Flow.objects.filter(template_key__startswith="p-time-to-invoice/").count() == 5


def test_deleting_a_template_no_client_runs_removes_its_versions_and_its_offers(world, saved):
    template, tailspin, wingtip = saved.template, world.clients["tailspin"], world.clients["wingtip"]
    next_version(world, saved)
    template_deploy(template=template, version=saved, clients=[tailspin, wingtip], actor=world.user(PARTNER_ADMIN))
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert 'data-testid="delete-template"' in page
    assert (
        'data-confirm="Delete “Time to invoice” and its 2 versions? 2 clients stop being offered it.'
        ' This cannot be undone."'
    ) in page

    response = admin.post(f"/partner/templates/{template.pk}/delete", follow=True)
    assert response.redirect_chain[-1][0] == "/partner/templates/"
    assert "“Time to invoice” is deleted, with its versions and its offer to 2 clients." in response.content.decode()
    assert not IntegrationTemplate.objects.filter(pk=template.pk).exists()
    assert not IntegrationTemplateVersion.objects.filter(template_id=template.pk).exists()
    assert not TemplateDeployment.objects.filter(template_id=template.pk).exists()
    for client in (tailspin, wingtip):
        assert audit_summaries(client, "template.deleted") == [
            "Northwind Advisory deleted template “Time to invoice”; it is no longer offered here"
        ]
    assert audit_summaries(world.clients["contoso"], "template.deleted") == [
        "Northwind Advisory deleted template “Time to invoice”"
    ]
    connection.set_schema_to_public()
    tailspin_admin = browser_for(world.user("admin@tailspin.localhost"), host=NORTHWIND)
    assert "From Northwind Advisory" not in tailspin_admin.get("/c/tailspin/flows/").content.decode()
    assert tailspin_admin.get("/c/tailspin/flows/install/p-time-to-invoice").status_code == 404
    with pytest.raises(IntegrationTemplate.DoesNotExist):
        template_delete(template=template, actor=world.user(PARTNER_ADMIN))


def test_the_deploy_form_says_which_clients_run_or_are_offered_it(world, saved):
    template, tailspin, wingtip = saved.template, world.clients["tailspin"], world.clients["wingtip"]
    template_deploy(template=template, version=saved, clients=[tailspin, wingtip], actor=world.user(PARTNER_ADMIN))
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    version_2 = next_version(world, saved)
    template_deploy(template=template, version=version_2, clients=[wingtip], actor=world.user(PARTNER_ADMIN))
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    form = page.split('id="deploy-form"', 1)[1].split("</form>", 1)[0]

    def label(client) -> list[str]:
        match = re.search(
            rf'<label class="choice"[^>]*>\s*<input[^>]*value="{client.pk}"[^>]*>(.*?)</label>', form, re.S
        )
        assert match, client.name
        return re.sub(r"<[^>]+>", "", match.group(1)).split()

    assert label(tailspin) == ["Tailspin", "Consulting", "runs", "v1"]
    assert label(wingtip) == ["Wingtip", "Partners", "offered", "v2"]
    assert label(world.clients["contoso"]) == ["Contoso", "Engineering"]  # saved from, never offered: nothing


# --- What a partner types reaches partner staff and clients inert --------------------------------
# The template counterpart of tests/branding/test_brand_editor.py's brand and client-name injection test.

HOSTILE_NAME = "<script>alert(11)</script><img src=x onerror=alert(12)>"
HOSTILE_SUMMARY = "<style>*{display:none}</style><script>alert(13)</script>"
HOSTILE_NOTES = "<script>alert(14)</script><style>*{color:red}</style><img src=x onerror=alert(15)>"


def assert_inert(html: str, where: str) -> None:
    for raw in ("<script>alert(1", "<style>*{", "<img src=x"):
        assert raw not in html, f"{raw!r} reached {where} unescaped"


def test_script_and_style_through_template_name_summary_and_notes_render_inert(world):
    contoso, tailspin, wingtip = world.clients["contoso"], world.clients["tailspin"], world.clients["wingtip"]
    flow_id = source_flow(contoso)
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    response = admin.post(
        "/partner/templates/new",
        {"client": contoso.pk, "flow": flow_id, "name": HOSTILE_NAME, "summary": HOSTILE_SUMMARY},
        follow=True,
    )
    assert response.status_code == 200 and response.redirect_chain
    assert_inert(response.content.decode(), "the toast after saving")
    template = IntegrationTemplate.objects.get(partner=world.partners["northwind"], name=HOSTILE_NAME)
    response = admin.post(
        f"/partner/templates/{template.pk}/versions/new",
        {"client": contoso.pk, "flow": flow_id, "notes": HOSTILE_NOTES},
        follow=True,
    )
    assert response.redirect_chain and template.versions.count() == 2
    assert_inert(response.content.decode(), "the toast after saving v2")
    version_1 = template.versions.get(number=1)
    template_deploy(template=template, version=version_1, clients=[tailspin, wingtip], actor=world.user(PARTNER_ADMIN))
    install_key = f"p-{template.key}"
    flows = install_in(tailspin, install_key, "admin@tailspin.localhost", world)  # its installed card and version
    assert flows
    connection.set_schema_to_public()

    staff = browser_for(world.user(STAFF), host=NORTHWIND)
    tailspin_admin = browser_for(world.user("admin@tailspin.localhost"), host=NORTHWIND)
    wingtip_admin = admin  # Wingtip has no admin of its own; the partner admin works in its workspace
    pages = {
        "partner template list": admin.get("/partner/templates/"),
        "partner template page": admin.get(f"/partner/templates/{template.pk}/"),
        "new version form": admin.get(f"/partner/templates/{template.pk}/versions/new"),
        "template list for staff": staff.get("/partner/templates/"),
        "template page for staff": staff.get(f"/partner/templates/{template.pk}/"),
        "flows of a client that installed it": tailspin_admin.get("/c/tailspin/flows/"),
        "flows of a client offered it": wingtip_admin.get("/c/wingtip/flows/"),
        "install page": wingtip_admin.get(f"/c/wingtip/flows/install/{install_key}"),
        "audit log of a client offered it": wingtip_admin.get("/c/wingtip/audit/"),
        "audit log of the client it was saved from": browser_for(
            world.user("admin@contoso.localhost"), host=NORTHWIND
        ).get("/c/contoso/audit/"),
    }
    for where, page in pages.items():
        assert page.status_code == 200, where
        html = page.content.decode()
        assert_inert(html, where)
        assert "&lt;script&gt;alert(11)&lt;/script&gt;" in html, f"the template name is not shown escaped on {where}"
    for where in ("partner template list", "partner template page", "flows of a client offered it", "install page"):
        html = pages[where].content.decode()
        assert "&lt;style&gt;*{display:none}&lt;/style&gt;" in html, f"the summary is not shown escaped on {where}"
    html = pages["partner template page"].content.decode()
    assert html.count("&lt;script&gt;alert(14)&lt;/script&gt;") >= 2  # the version history and the deploy form
    assert "&lt;script&gt;alert(14)&lt;/script&gt;" in pages["template page for staff"].content.decode()

    # Renaming to something hostile, and the confirmations that quote the name in an attribute.
    response = admin.post(
        f"/partner/templates/{template.pk}/edit",
        {"name": HOSTILE_NAME + " 2", "summary": HOSTILE_SUMMARY},
        follow=True,
    )
    html = response.content.decode()
    assert response.redirect_chain and "&lt;script&gt;alert(11)&lt;/script&gt;" in html
    assert_inert(html, "the template page after renaming")
    assert 'data-confirm="Withdraw “&lt;script&gt;alert(11)' in html
    response = admin.post(
        f"/partner/templates/{template.pk}/edit", {"name": HOSTILE_NAME + "\n"}, headers={"HX-Request": "true"}
    )
    assert_inert(response.content.decode(), "the rename form with its errors")
    response = admin.post(f"/partner/templates/{template.pk}/delete", follow=True)
    assert "cannot be deleted while Tailspin Consulting runs it" in response.content.decode()
    assert_inert(response.content.decode(), "the refusal to delete")
