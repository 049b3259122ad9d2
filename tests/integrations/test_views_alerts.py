"""The Alerts page through the test client: add, change and remove recipients with HTMX and
without, the errors that re-render the form, what finance and viewers see, the flow page's panel."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.urls import set_urlconf

from integrations.models import AuditEvent, Flow, NotificationRecipient
from integrations.services.alerts import alert_recipient_add
from tests.integrations.workspace_fixtures import seed_workspace
from tests.integrations.workspace_views import HTMX, within
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db

PAGE = "/c/contoso/alerts/"


@pytest.fixture
def contoso(world):
    """Contoso with a packaged flow installed and one recipient of every flow."""
    connection.set_tenant(world.clients["contoso"])
    seeded = seed_workspace()
    alert_recipient_add(email="ops@contoso.example", events=["on_run_failed", "on_connection_failed"])
    connection.set_schema_to_public()
    return seeded


def admin(world):
    return browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)


def triggers(response) -> dict:
    return json.loads(response["HX-Trigger"])


def test_the_page_lists_each_recipient_with_their_events_and_the_plans_sla(world, contoso):
    hours = world.clients["contoso"].plan.sla_resolution_hours
    page = admin(world).get(PAGE).content.decode()
    item = re.search(
        r'<li class="alert-item[^"]*"[^>]*data-testid="alert-ops@contoso.example">.*?</li>\s*</ul>', page, re.S
    )
    assert item, page
    assert "Run failed" in item.group(0) and "Connection failing" in item.group(0)
    assert "Every flow" in item.group(0)
    assert f"Exceptions past the plan&#x27;s SLA ({hours} h)" in page
    assert 'aria-current="page">Alerts</a>' in page  # its tab beside People and the audit log


def test_an_admin_adds_a_finance_person_for_one_flows_run_failures(world, contoso):
    flow = contoso.flow
    response = admin(world).post(
        f"{PAGE}add",
        {"email": "Finance@Contoso.localhost", "events": ["on_run_failed"], "flows": [flow.pk]},
        **HTMX,
    )
    assert response.status_code == 200
    assert triggers(response)["alerts-changed"] is True
    assert triggers(response)["toast"]["message"] == "finance@contoso.localhost is on the alert list."
    assert 'id="alert-add-form"' in response.content.decode() and "Finance@" not in response.content.decode()

    def stored():
        recipient = NotificationRecipient.objects.get(email="finance@contoso.localhost")
        event = AuditEvent.objects.get(action="alert.recipient_added", target_id=str(recipient.pk))
        return recipient.events(), list(recipient.flows.values_list("pk", flat=True)), event.actor_email

    assert within(world, stored) == (["on_run_failed"], [flow.pk], "admin@contoso.localhost")
    # The list refreshes itself on the event and shows the new recipient, limited to the flow.
    listed = admin(world).get(PAGE, **HTMX).content.decode()
    assert listed.lstrip().startswith('<div id="recipients"')
    assert 'data-testid="alert-finance@contoso.localhost"' in listed and f"Only {flow.name}" in listed


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"email": "finance at contoso", "events": ["on_run_failed"]}, "Enter a valid email address"),
        ({"email": "OPS@contoso.example", "events": ["on_run_failed"]}, "ops@contoso.example already gets alerts"),
        ({"email": "new@contoso.example"}, "Choose at least one alert"),
    ],
)
def test_a_refused_addition_re_renders_the_form_with_its_error(world, contoso, data, error):
    browser = admin(world)
    partial = browser.post(f"{PAGE}add", data, **HTMX)
    assert partial.status_code == 200  # htmx swaps no 4xx: the form with its errors is the answer
    body = partial.content.decode()
    assert body.lstrip().startswith('<form id="alert-add-form"') and error in body
    assert f'value="{data["email"]}"' in body  # what was typed stays
    whole = browser.post(f"{PAGE}add", data)
    assert whole.status_code == 422 and error in whole.content.decode() and "Who is alerted" in whole.content.decode()
    assert within(world, lambda: sorted(NotificationRecipient.objects.values_list("email", flat=True))) == [
        "ops@contoso.example"
    ]


def test_changing_a_recipients_events_saves_them_and_refreshes_the_list(world, contoso):
    recipient = within(world, lambda: NotificationRecipient.objects.get(email="ops@contoso.example"))
    prefix = f"r{recipient.pk}"
    response = admin(world).post(
        f"{PAGE}{recipient.pk}/save",
        {f"{prefix}-events": ["on_sla_breach"], f"{prefix}-flows": [contoso.flow.pk]},
        **HTMX,
    )
    assert response.status_code == 204
    assert triggers(response) == {
        "alerts-changed": True,
        "toast": {"message": "Saved the alerts of ops@contoso.example.", "level": "success"},
    }

    def stored():
        recipient.refresh_from_db()
        return (
            recipient.events(),
            list(recipient.flows.all()),
            AuditEvent.objects.filter(action="alert.recipient_changed").count(),
        )

    assert within(world, stored) == (
        ["on_sla_breach"],
        [within(world, lambda: Flow.objects.get(pk=contoso.flow.pk))],
        1,
    )


def test_a_change_without_events_shows_the_error_in_that_recipients_row(world, contoso):
    recipient = within(world, lambda: NotificationRecipient.objects.get(email="ops@contoso.example"))
    response = admin(world).post(f"{PAGE}{recipient.pk}/save", {}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith(f'<li class="alert-item is-editing" id="alert-{recipient.pk}"')
    assert "Choose at least one alert, or remove the recipient." in body and '<details class="alert-edit" open>' in body
    recipient = within(world, lambda: NotificationRecipient.objects.get(pk=recipient.pk))
    assert recipient.events() == ["on_run_failed", "on_connection_failed"]


def test_removing_a_recipient_stops_their_alerts(world, contoso):
    recipient = within(world, lambda: NotificationRecipient.objects.get(email="ops@contoso.example"))
    response = admin(world).post(f"{PAGE}{recipient.pk}/remove", **HTMX)
    assert response.status_code == 204
    assert triggers(response)["toast"]["message"] == "ops@contoso.example no longer gets alerts."
    assert not within(world, lambda: NotificationRecipient.objects.exists())
    assert within(world, lambda: AuditEvent.objects.filter(action="alert.recipient_removed").count()) == 1
    plain = admin(world).get(PAGE).content.decode()
    assert "Nobody is alerted yet" in plain


def test_partner_staff_manage_alerts_as_client_admins_do(world, contoso):
    staff = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    response = staff.post(f"{PAGE}add", {"email": "noc@northwind.example", "events": ["on_connection_failed"]})
    assert response.status_code == 302
    event = within(world, lambda: AuditEvent.objects.exclude(actor_email="").get(action="alert.recipient_added"))
    assert event.actor_email == "engineer@northwind.localhost" and "noc@northwind.example" in event.summary


@pytest.mark.parametrize("email", ["finance@contoso.localhost", "viewer@contoso.localhost"])
def test_finance_and_viewers_see_who_is_alerted_but_no_controls(world, contoso, email):
    page = browser_for(world.user(email), host=NORTHWIND).get(PAGE).content.decode()
    assert 'data-testid="alert-ops@contoso.example"' in page
    assert "Who changes this list" in page
    assert "alert-add-form" not in page and "Change alerts" not in page and "hx-post" not in page


def test_the_flow_panel_names_who_hears_about_the_flow_and_links_to_alerts(world, contoso):
    client = world.clients["contoso"]
    set_urlconf("portal.urls_partner")
    connection.set_tenant(client)
    try:
        alert_recipient_add(email="billing@contoso.example", events=["on_run_failed"], flows=[contoso.flow])
        html = render_to_string("integrations/flows/_alerts.html", {"flow": contoso.flow, "client": client})
        other = Flow.objects.exclude(pk=contoso.flow.pk).first()
        elsewhere = render_to_string("integrations/flows/_alerts.html", {"flow": other, "client": client})
    finally:
        connection.set_schema_to_public()
        set_urlconf(None)
    assert 'data-testid="flow-alert-billing@contoso.example"' in html and "Run failed · this flow" in html
    assert "Run failed · Connection failing · every flow" in html
    assert 'href="/c/contoso/alerts/"' in html
    assert "billing@contoso.example" not in elsewhere
