"""Client workspace journeys: Chromium drives the real gunicorn, a real Celery worker runs the syncs,
and the vendor sandboxes answer over real HTTP.

The journeys run on a partner of their own (Harbor Advisory, harbor.localhost) so the demo partners
stay as seeded: Alder Engineering has synced already (HR employees, then approved time, in this
process), Birch Consulting starts empty for the admin who connects it from scratch.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import SCREENSHOTS, screenshot, sign_in
from tests.support import journey_partner, sandbox_env, start_worker, user_who_can_sign_in, vendor_sandboxes, web_server

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "harbor.localhost"
# Forty people logging a day each: two months of time in about a thousand entries, so the
# dashboards have weeks to show while a run stays within seconds. The ERP sandbox knows the
# first 60 projects only, so time on the others cannot be billed until a clerk maps its code.
FIRM = dict(people=40, customers=12, projects=80, time_entries=1100, expenses=40)


@pytest.fixture(scope="module")
def harbor_sandboxes():
    with vendor_sandboxes(("kantata", "netsuite", "bamboohr"), **FIRM) as running:
        yield running


@pytest.fixture(scope="module")
def engine_env(harbor_sandboxes):
    return sandbox_env(harbor_sandboxes.values(), SYNC_SLICE_SECONDS="2")


@pytest.fixture(scope="module")
def harbor_web(world, engine_env, tmp_path_factory):
    with web_server(tmp_path_factory.mktemp("harbor-web") / "web.log", **engine_env) as port:
        yield f"http://{HOST}:{port}"


def _member(client, email: str, name: str, role: str):
    from tenants.models import Membership

    user = user_who_can_sign_in(email, DEMO_PASSWORD, full_name=name)
    Membership.objects.get_or_create(user=user, client=client, defaults={"role": role})


@pytest.fixture(scope="module")
def harbor(world, django_db_blocker):
    """Harbor Advisory with two clients on a plan with a 24 h resolution SLA, committed for the server."""
    with django_db_blocker.unblock():
        from tenants import services
        from tenants.models import Client, Plan, Role

        brand = dict(product_name="Harbor Connect", primary_color="#0F766E", accent_color="#F59E0B")
        partner = journey_partner(slug="harbor", name="Harbor Advisory", host=HOST, brand=brand)
        plan, _ = Plan.objects.get_or_create(
            partner=partner,
            name="Professional",
            defaults=dict(
                monthly_price=Decimal("1290.00"),
                included_records=250_000,
                max_connections=12,
                max_flows=15,
                min_sync_interval_minutes=15,
                sla_resolution_hours=24,
            ),
        )
        clients = {}
        for slug, name in (("alder", "Alder Engineering"), ("birch", "Birch Consulting")):
            client = Client.objects.filter(partner=partner, slug=slug).first() or services.client_create(
                partner=partner, name=name, slug=slug, plan=plan
            )
            clients[slug] = client
            _member(client, f"admin@{slug}.localhost", f"{name.split()[0]} Admin", Role.CLIENT_ADMIN)
            _member(client, f"finance@{slug}.localhost", "Frida Finance", Role.CLIENT_FINANCE)
            _member(client, f"viewer@{slug}.localhost", "Victor Viewer", Role.CLIENT_VIEWER)
        connection.set_schema_to_public()
    return clients


def _run_to_end(flow):
    from integrations.models import SyncRun
    from integrations.services.runs import run_slice

    run = SyncRun.objects.create(flow=flow, trigger="manual")
    while run_slice(run_id=run.pk, slice_seconds=60) == "continue":
        pass
    run.refresh_from_db()
    return run


@pytest.fixture(scope="module")
def alder(harbor, harbor_sandboxes, engine_env, django_db_blocker):
    """Alder has synced: HR employees to resources, then approved time to invoices, some days ago."""
    from integrations.models import Connection, SyncException, SyncRun
    from integrations.services.connections import connection_create
    from integrations.services.flows import template_install

    client = harbor["alder"]
    allowed = engine_env["CONNECTOR_ALLOWED_HOSTS"].split(",")
    with django_db_blocker.unblock(), override_settings(CONNECTOR_ALLOWED_HOSTS=allowed, CONNECTOR_RATE_PER_SECOND=500):
        connection.set_tenant(client)
        if not SyncRun.objects.exists():
            made = {}
            for vendor, name in (("bamboohr", "BambooHR"), ("kantata", "Kantata OX"), ("netsuite", "NetSuite")):
                module = importlib.import_module(f"connectors.{vendor}.sandbox")
                made[vendor] = connection_create(
                    name=name,
                    vendor=vendor,
                    base_url=harbor_sandboxes[vendor].url,
                    credentials=dict(module.DEMO_CREDENTIALS),
                )
            people = template_install(
                key="employee-to-resource",
                connections={"hr": made["bamboohr"], "psa": made["kantata"], "erp": made["netsuite"]},
            )
            _run_to_end(people[0])
            flows = template_install(
                key="approved-time-to-invoice", connections={"psa": made["kantata"], "erp": made["netsuite"]}
            )
            _run_to_end(next(f for f in flows if f.template_key.endswith("/approved-time")))
            Connection.objects.update(status=Connection.Status.OK, last_tested_at=timezone.now())
            # As if the sync had run over the past days: exceptions of different ages against the SLA.
            now = timezone.now()
            for index, pk in enumerate(SyncException.objects.order_by("pk").values_list("pk", flat=True)):
                SyncException.objects.filter(pk=pk).update(created_at=now - timedelta(hours=(index * 7) % 190))
        connection.set_schema_to_public()
    return client


def viewport_shot(page, name: str) -> None:
    """What the person sees without scrolling (long lists make full-page shots unreadable)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), caret="initial")  # see conftest.screenshot


def processed_by_htmx(locator) -> None:
    """Wait until htmx has wired a swapped-in element (a person never acts within those milliseconds)."""
    locator.evaluate(
        """element => new Promise(resolve => {
            const ready = () => element["htmx-internal-data"] && element["htmx-internal-data"].initHash;
            const check = () => ready() ? resolve() : requestAnimationFrame(check);
            check();
        })"""
    )


def number(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text) or 0)


def in_schema(client, fn):
    connection.set_tenant(client)
    try:
        return fn()
    finally:
        connection.set_schema_to_public()


def test_finance_maps_a_project_code_and_the_time_waiting_on_it_is_billed(page, harbor_web, alder, django_db_blocker):
    """Time on a project the ERP lacks waits behind one exception per project; mapping the code releases it."""
    from integrations.models import ExternalRef, Project, SyncException

    with django_db_blocker.unblock():

        def facts():
            cause = (
                SyncException.objects.filter(status="open", error_code="PROJECT_NOT_IN_TARGET")
                .order_by("subject")
                .first()
            )
            waiting = list(cause.parked.filter(status="parked").values_list("pk", flat=True))
            known = ExternalRef.objects.filter(connection__vendor="netsuite", entity="project").values("record_id")
            target = Project.objects.filter(pk__in=known).order_by("code").first().code
            return cause, waiting, target

        cause, waiting, target = in_schema(alder, facts)
    code = cause.subject
    assert len(waiting) > 1, "the approved-time run left no group of entries waiting on a project"

    base = harbor_web
    sign_in(page, base, "finance@alder.localhost")
    page.goto(f"{base}/c/alder/exceptions/")
    open_before = number(page.get_by_test_id("count-open").inner_text())
    page.locator("#id_error_code").select_option("PROJECT_NOT_IN_TARGET")
    expect(page.get_by_test_id("matching")).to_contain_text("matching")
    expect(page.locator("[data-testid=exception-row][data-error=PROJECT_NOT_IN_TARGET]").first).to_be_visible()
    assert page.locator("[data-testid=exception-row]:not([data-error=PROJECT_NOT_IN_TARGET])").count() == 0
    assert "error_code=PROJECT_NOT_IN_TARGET" in page.url  # the filter is in the address, for the back button
    # One row per project the ERP lacks, not one per time entry.
    rows = page.locator("[data-testid=exception-row]")
    assert rows.filter(has_text=f"Project {code} is not in NetSuite").count() == 1
    viewport_shot(page, "workspace-exception-queue")
    # Ignoring: one reason, for the ticked ones or every one that matches (not sent here).
    page.locator(".bulk-ignore summary").click()
    popover = page.get_by_test_id("ignore-popover")
    popover.get_by_label("Why ignore them?").fill("Internal projects, never billed")
    matching = number(page.get_by_test_id("matching").inner_text())
    expect(popover.get_by_role("button", name=f"Ignore all {matching:,} matching")).to_be_visible()
    viewport_shot(page, "workspace-exception-ignore")
    page.locator(".bulk-ignore summary").click()

    page.get_by_role("link", name=re.compile(f"Project {re.escape(code)} is not in NetSuite")).click()
    heading = page.get_by_test_id("exception-message")
    expect(heading).to_contain_text("so its time and expenses cannot be billed")
    expect(page.get_by_test_id("waiting")).to_contain_text(f"{len(waiting)} records wait on this")
    form = page.get_by_test_id("fix-map")
    expect(form).to_contain_text(f"Map “{code}”")
    strip_before = number(page.get_by_test_id("strip-open").inner_text())
    screenshot(page, "workspace-exception-detail")

    form.get_by_label(f"“{code}” maps to").fill(target)
    form.get_by_role("button", name=re.compile("Map and retry")).click()
    outcome = page.get_by_test_id("outcome")
    expect(outcome).to_contain_text("1 exception resolved")
    expect(outcome).to_contain_text(f"{len(waiting)} records waiting on it synced")
    expect(page.get_by_test_id("strip-open")).to_have_text(re.compile(rf"^{strip_before - 1:,}$"))
    expect(page.locator(".badge-ok", has_text="Resolved")).to_be_visible()
    screenshot(page, "workspace-exception-fixed")
    # What a clerk types is shown as text, never run: no dialog opens, the markup reads as typed.
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    typed = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    page.get_by_role("textbox", name="Comment").fill(typed)
    page.get_by_role("button", name="Add comment").click()
    expect(page.get_by_test_id("comments")).to_contain_text(typed)
    assert page.get_by_test_id("comments").locator("img, script").count() == 0 and not dialogs

    page.goto(f"{base}/c/alder/exceptions/?q={code}")
    expect(page.get_by_text("No exceptions match")).to_be_visible()
    assert number(page.get_by_test_id("count-open").inner_text()) == open_before - 1
    with django_db_blocker.unblock():
        left = in_schema(alder, lambda: SyncException.objects.filter(pk__in=waiting).exclude(status="resolved").count())
    assert left == 0  # every entry that waited is billed now


def test_admin_connects_installs_and_watches_a_run_finish(
    page, harbor_web, harbor, harbor_sandboxes, engine_env, django_db_blocker, tmp_path
):
    from integrations.models import SyncRun

    base = harbor_web
    kantata = importlib.import_module("connectors.kantata.sandbox").DEMO_CREDENTIALS
    netsuite = importlib.import_module("connectors.netsuite.sandbox").DEMO_CREDENTIALS
    worker = start_worker(tmp_path / "worker.log", **engine_env)
    try:
        sign_in(page, base, "admin@birch.localhost")
        page.goto(f"{base}/c/birch/connections/")
        page.get_by_test_id("add-kantata").click()
        page.get_by_label("Base URL").fill(harbor_sandboxes["kantata"].url)
        page.get_by_label("OAuth access token").fill(kantata["access_token"])
        page.get_by_role("button", name="Save connection").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Kantata OX")
        expect(page.get_by_test_id("connection-status")).to_have_text("Untested")
        page.get_by_test_id("test-connection").click()
        expect(page.get_by_test_id("test-result")).to_contain_text("Connected to Kantata OX")
        expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
        assert kantata["access_token"] not in page.content()

        page.goto(f"{base}/c/birch/connections/new/netsuite")
        page.get_by_label("Base URL").fill(harbor_sandboxes["netsuite"].url)
        page.get_by_label("Account ID").fill(netsuite["account_id"])
        page.get_by_label("Client ID").fill(netsuite["client_id"])
        page.get_by_label("Certificate ID").fill(netsuite["certificate_id"])
        page.get_by_label("Certificate private key (PEM)").fill(netsuite["private_key"])
        page.get_by_role("button", name="Save connection").click()
        page.get_by_test_id("test-connection").click()
        expect(page.get_by_test_id("test-result")).to_contain_text("Connected")
        assert "PRIVATE KEY" not in page.content()
        page.goto(f"{base}/c/birch/connections/")
        expect(page.get_by_test_id("connections").locator(".badge-ok")).to_have_count(2)
        screenshot(page, "workspace-connections")

        page.goto(f"{base}/c/birch/flows/")
        page.get_by_test_id("install-approved-time-to-invoice").click()
        page.get_by_role("button", name="Install Approved time to invoice").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Approved time to invoices")

        page.get_by_test_id("run-now").click()
        status = page.get_by_test_id("run-status")
        expect(status).to_have_attribute("data-status", re.compile("queued|running"))
        expect(page.get_by_test_id("count-read")).not_to_have_text("0", timeout=90_000)
        screenshot(page, "workspace-flow-running")
        expect(status).to_have_attribute("data-status", re.compile("succeeded|partial"), timeout=180_000)
        expect(page.get_by_test_id("run-percent")).to_have_text("100%")
        expect(page.get_by_test_id("run-progress")).to_have_attribute("value", "100")
        read = number(page.get_by_test_id("count-read").inner_text())
        created = number(page.get_by_test_id("count-created").inner_text())
        assert read > 0 and created > 0
        expect(page.get_by_test_id("run-history")).to_contain_text(f"{read}")
        screenshot(page, "workspace-flow-finished")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    with django_db_blocker.unblock():
        run = in_schema(harbor["birch"], lambda: SyncRun.objects.filter(trigger="manual").order_by("-pk").first())
    assert run.read == read and run.status in ("succeeded", "partial")


def test_mapping_editor_previews_a_live_sample_as_the_rule_changes(page, harbor_web, alder):
    base = harbor_web
    sign_in(page, base, "admin@alder.localhost")
    page.goto(f"{base}/c/alder/flows/")
    page.get_by_role("link", name="Approved time to invoices").first.click()
    page.get_by_role("link", name="Edit mapping").click()
    expect(page.get_by_test_id("sample")).to_be_visible()  # read live from the Kantata sandbox
    preview = page.get_by_test_id("preview")
    notes_row = preview.locator("tr", has_text="time_entry.notes")
    before = notes_row.locator("td").inner_text()
    assert before and before != before.upper()

    page.get_by_test_id("rule-row").filter(has_text="time_entry.notes").get_by_role("button", name="Edit").click()
    step = page.get_by_test_id("rule-form").get_by_test_id("transform-2")
    processed_by_htmx(step)
    step.select_option("upper")
    expect(page.get_by_test_id("preview").locator("tr.is-edited td")).to_have_text(before.upper())
    screenshot(page, "workspace-mapping-editor")
    page.get_by_test_id("rule-form").get_by_test_id("save-rule").click()
    expect(page.get_by_test_id("rule-row").filter(has_text="time_entry.notes")).to_contain_text("Upper case")


def test_viewer_sees_dashboards_but_no_edit_controls_and_a_post_is_refused(page, harbor_web, alder):
    base = harbor_web
    sign_in(page, base, "viewer@alder.localhost")
    for path, name, probe in (
        ("dashboards/", "exceptions", "dash-open"),
        ("dashboards/utilization", "utilization", "dash-utilization"),
        ("dashboards/margin", "margin", "dash-revenue"),
        ("dashboards/sync-health", "sync-health", "dash-runs"),
    ):
        page.goto(f"{base}/c/alder/{path}")
        expect(page.get_by_test_id(probe)).to_be_visible()
        assert page.locator("svg.chart-svg").count() >= 1
        assert page.locator("table.numbers").count() >= 1
        screenshot(page, f"workspace-dashboard-{name}")
    assert number(page.get_by_test_id("dash-runs").inner_text()) >= 2

    page.goto(f"{base}/c/alder/flows/")
    page.get_by_role("link", name="Approved time to invoices").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Approved time to invoices")
    assert page.get_by_test_id("run-now").count() == 0
    assert page.get_by_role("button", name="Pause").count() == 0
    flow_path = page.url
    page.goto(f"{base}/c/alder/exceptions/")
    assert page.locator("#bulk-form").count() == 0
    page.locator("[data-testid=exception-row] a.problem-message").first.click()
    expect(page.get_by_test_id("exception-message")).to_be_visible()
    assert page.get_by_test_id("fix-map").count() == 0 and page.get_by_test_id("fix-edit").count() == 0
    page.goto(f"{base}/c/alder/connections/")
    assert page.get_by_test_id("add-kantata").count() == 0

    # A direct POST from the signed-in browser (session and CSRF token included): the role says no.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    status, body = page.evaluate(
        """async ([url, token]) => {
            const response = await fetch(url, {method: "POST", headers: {"X-CSRFToken": token}});
            return [response.status, await response.text()];
        }""",
        [flow_path.rstrip("/") + "/run", token],
    )
    assert status == 403
    assert "does not allow this" in body


def test_admin_builds_a_flow_from_scratch_and_lands_on_its_mapping(page, harbor_web, alder):
    base = harbor_web
    sign_in(page, base, "admin@alder.localhost")
    page.goto(f"{base}/c/alder/flows/")
    page.get_by_test_id("build-flow").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Build a flow")
    page.get_by_label("Flow name").fill("Resources to ERP employees")
    page.get_by_label(re.compile("^Read")).select_option(label="Resources · Kantata OX")
    page.get_by_label(re.compile("^As")).select_option(label="Person")
    page.get_by_label("Write to").select_option(label="Employees · NetSuite")
    page.get_by_label("Starts").select_option(label="On a schedule")
    page.get_by_label("Runs").select_option(label="Every day")
    screenshot(page, "flow-builder")
    page.get_by_role("button", name="Build the flow").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Resources to ERP employees")
    expect(page.get_by_test_id("flow-unmapped")).to_contain_text("maps no fields yet")
    expect(page.locator(".flow-path")).to_contain_text("Person in NetSuite")
    page.get_by_role("link", name="Edit mapping").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Resources to ERP employees")
