"""Every URL of the client workspace, for every role: the allowed ones answer, the others are refused.

Refused means 403 for a role the page is not for, 405 for a method the URL does not serve, and
404 for anything of another client (whose schema the request never enters).
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.urls import URLPattern, reverse

from integrations import urls as workspace_urls
from integrations.models import NotificationRecipient, ValueMapEntry
from tenants.models import Membership, Role, User
from tests.integrations.workspace_fixtures import project_codes_map, seed_workspace
from tests.integrations.workspace_views import cold_cache  # noqa: F401 -- fixtures
from tests.support import NORTHWIND, SUMMIT, browser_for

pytestmark = pytest.mark.django_db


ADMIN = "admin@contoso.localhost"
FINANCE = "finance@contoso.localhost"
VIEWER = "viewer@contoso.localhost"
STAFF = "engineer@northwind.localhost"
PARTNER_ADMIN = "admin@northwind.localhost"
ALL = frozenset({ADMIN, FINANCE, VIEWER, STAFF, PARTNER_ADMIN})
FIN = ALL - {VIEWER}
EDIT = ALL - {VIEWER, FINANCE}

# url name -> (roles that may GET it, roles that may POST to it); None: the method is not served (405).
ACCESS = {
    "workspace_home": (ALL, None),
    "exception_queue": (ALL, None),
    "exception_counters": (ALL, None),
    "exception_export": (ALL, None),
    "exception_bulk": (None, FIN),
    "exception_bulk_progress": (ALL, None),
    "exception_detail": (ALL, None),
    "exception_retry": (None, FIN),
    "exception_edit": (None, FIN),
    "exception_map": (None, FIN),
    "exception_ignore": (None, FIN),
    "exception_duplicate": (None, FIN),
    "exception_pick": (None, FIN),
    "exception_cost_rate": (None, FIN),
    "exception_assign": (None, FIN),
    "exception_comment": (None, FIN),
    "connection_list": (ALL, None),
    "connection_new": (EDIT, EDIT),
    "connection_detail": (ALL, None),
    "connection_test": (None, EDIT),
    "connection_rotate": (None, EDIT),
    "connection_rename": (None, EDIT),
    "connection_delete": (None, EDIT),
    "flow_list": (ALL, None),
    "template_install": (EDIT, EDIT),
    "flow_build": (EDIT, EDIT),
    "flow_step_add": (None, EDIT),
    "flow_detail": (ALL, None),
    "flow_run": (None, EDIT),
    "flow_promote": (EDIT, EDIT),
    "flow_enabled": (None, EDIT),
    "flow_schedule": (None, EDIT),
    "run_history": (ALL, None),
    "run_progress": (ALL, None),
    "run_reconciliation": (ALL, None),
    "run_reconciliation_csv": (ALL, None),
    "flow_reconciliation": (ALL, None),
    "flow_reconciliation_csv": (ALL, None),
    "flow_webhook_rotate": (None, EDIT),
    "account_fields": (ALL, EDIT),
    "mapping_editor": (ALL, None),
    "mapping_sample_refresh": (None, EDIT),
    "mapping_match_keys": (None, EDIT),
    "mapping_preview": (ALL, None),
    "mapping_preview_draft": (None, EDIT),
    "mapping_rule_new": (EDIT, EDIT),
    "mapping_rule_add": (None, EDIT),
    "mapping_rule_row": (EDIT, None),
    "mapping_rule_edit": (EDIT, EDIT),
    "mapping_rule_save": (None, EDIT),
    "mapping_rule_delete": (None, EDIT),
    "value_map_list": (ALL, None),
    "value_map_detail": (ALL, None),
    "value_map_entry_add": (None, FIN),
    "value_map_entry_delete": (None, FIN),
    "dashboard_exceptions": (ALL, None),
    "dashboard_utilization": (ALL, None),
    "dashboard_margin": (ALL, None),
    "dashboard_sync": (ALL, None),
    "dashboard_backlog": (ALL, None),
    "dashboard_backlog_records": (ALL, None),
    "dashboard_backlog_csv": (ALL, None),
    "workspace_users": (ALL, None),
    "workspace_user_invite": (None, EDIT),
    "workspace_user_role": (None, EDIT),
    "workspace_user_remove": (None, EDIT),
    "audit_log": (ALL, None),
    "alert_list": (ALL, None),
    "alert_recipient_add": (None, EDIT),
    "alert_recipient_save": (None, EDIT),
    "alert_recipient_remove": (None, EDIT),
}


def test_the_table_covers_every_workspace_url():
    names = {entry.name for entry in workspace_urls.urlpatterns if isinstance(entry, URLPattern)}
    assert names == set(ACCESS)


def objects_in(client, *, extra_member: str) -> dict[str, list]:
    """One of each object of the workspace, created in its schema, as URL arguments per name."""
    connection.set_tenant(client)
    seeded = seed_workspace()
    value_map = project_codes_map()
    entry = ValueMapEntry.objects.create(value_map=value_map, source_value="OLD-1", target_value="PRJ-101")
    rule = seeded.flow.inbound_mapping.rules.order_by("order").first()
    recipient = NotificationRecipient.objects.create(email=f"alerts-{extra_member}")
    health = _account_health_flow()
    connection.set_schema_to_public()
    user = User.objects.create_user(extra_member, full_name="Extra Member")
    member = Membership.objects.create(user=user, client=client, role=Role.CLIENT_VIEWER)
    exception = seeded.project_code_exceptions[0].pk
    flow, mapping = seeded.flow.pk, seeded.flow.inbound_mapping_id
    return {
        "exception_detail": [exception],
        "exception_retry": [exception],
        "exception_edit": [exception],
        "exception_map": [exception],
        "exception_ignore": [exception],
        "exception_duplicate": [exception],
        "exception_pick": [exception],
        "exception_cost_rate": [exception],
        "exception_assign": [exception],
        "exception_comment": [exception],
        "connection_new": ["kantata"],
        "connection_detail": [seeded.kantata.pk],
        "connection_test": [seeded.kantata.pk],
        "connection_rotate": [seeded.kantata.pk],
        "connection_rename": [seeded.kantata.pk],
        "connection_delete": [seeded.kantata.pk],  # used by the seeded flow: refused, never deleted
        "template_install": ["lead-to-project"],
        "flow_detail": [flow],
        "flow_run": [flow],
        "flow_promote": [flow],
        "flow_enabled": [flow],
        "flow_schedule": [flow],
        "flow_step_add": [flow],
        "run_history": [flow],
        "run_progress": [seeded.run.pk],
        "run_reconciliation": [seeded.run.pk],
        "run_reconciliation_csv": [seeded.run.pk],
        "flow_reconciliation": [flow],
        "flow_reconciliation_csv": [flow],
        "flow_webhook_rotate": [flow],
        "account_fields": [health],
        "mapping_editor": [mapping],
        "mapping_sample_refresh": [mapping],
        "mapping_match_keys": [mapping],
        "mapping_preview": [mapping],
        "mapping_preview_draft": [mapping],
        "mapping_rule_new": [mapping],
        "mapping_rule_add": [mapping],
        "mapping_rule_row": [mapping, rule.pk],
        "mapping_rule_edit": [mapping, rule.pk],
        "mapping_rule_save": [mapping, rule.pk],
        "mapping_rule_delete": [mapping, rule.pk],
        "value_map_detail": [value_map.pk],
        "value_map_entry_add": [value_map.pk],
        "value_map_entry_delete": [value_map.pk, entry.pk],
        "workspace_user_role": [member.pk],
        "workspace_user_remove": [member.pk],
        "alert_recipient_save": [recipient.pk],
        "alert_recipient_remove": [recipient.pk],
    }


def _account_health_flow() -> int:
    """A delivery-health flow on a HubSpot connection the tests cannot reach: its CRM fields page says so."""
    from integrations.services.connections import connection_create
    from integrations.services.flows import template_install
    from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials

    crm = connection_create(
        name="HubSpot", vendor="hubspot", base_url=UNREACHABLE, credentials=demo_credentials("hubspot")
    )
    flows = template_install(key="account-health-to-crm", connections={"crm": crm})
    return next(f.pk for f in flows if f.template_key.endswith("/account-health"))


def path_of(name: str, slug: str, objects: dict) -> str:
    return reverse(name, urlconf="portal.urls_partner", args=[slug, *objects.get(name, [])])


@pytest.mark.parametrize("email", sorted(ALL))
def test_each_role_reaches_what_it_may_and_is_refused_the_rest(world, email):
    objects = objects_in(world.clients["contoso"], extra_member=f"extra-{email.split('@')[0]}@contoso.localhost")
    browser = browser_for(world.user(email), host=NORTHWIND)
    problems = []
    for name, (get_roles, post_roles) in ACCESS.items():
        path = path_of(name, "contoso", objects)
        status = browser.get(path).status_code
        if get_roles is None:
            expected_get = {405}
        elif email in get_roles:
            expected_get = {200, 302}
        else:
            expected_get = {403}
        if status not in expected_get:
            problems.append(f"GET {name}: {status}, expected {sorted(expected_get)}")
        status = browser.post(path, {}).status_code
        if post_roles is None:
            ok = status == 405
        elif email in post_roles:
            ok = status in (200, 204, 302, 422)
        else:
            ok = status == 403
        if not ok:
            problems.append(f"POST {name}: {status}")
    assert not problems, "\n".join(problems)


def test_a_viewer_sees_no_edit_controls(world):
    objects = objects_in(world.clients["contoso"], extra_member="extra-viewer-controls@contoso.localhost")
    viewer = browser_for(world.user(VIEWER), host=NORTHWIND)
    for name in (
        "exception_queue",
        "exception_detail",
        "connection_list",
        "connection_detail",
        "flow_detail",
        "account_fields",
        "mapping_editor",
        "value_map_detail",
        "workspace_users",
        "flow_list",
        "alert_list",
    ):
        page = viewer.get(path_of(name, "contoso", objects)).content.decode()
        forms = [form for form in re.findall(r"<form[^>]*>", page) if 'method="post"' in form]
        assert all("/accounts/logout/" in form for form in forms), (name, forms)  # signing out is theirs
        assert "hx-post" not in page, name


def test_nobody_reaches_another_clients_workspace_or_objects(world):
    objects = objects_in(world.clients["tailspin"], extra_member="extra-tailspin@tailspin.localhost")
    for email in (ADMIN, FINANCE, VIEWER):
        browser = browser_for(world.user(email), host=NORTHWIND)
        for name in ACCESS:
            path = path_of(name, "tailspin", objects)
            assert browser.get(path).status_code == 404, path
            assert browser.post(path, {}).status_code == 404, path
    # Partner staff reach only assigned clients; another partner's admin reaches none of Northwind's.
    wingtip = {name: args for name, args in objects.items()}
    engineer = browser_for(world.user(STAFF), host=NORTHWIND)
    summit_admin = browser_for(world.user("admin@summit.localhost"), host=NORTHWIND)
    for name in ACCESS:
        assert engineer.get(path_of(name, "wingtip", wingtip)).status_code == 404
        assert summit_admin.get(path_of(name, "contoso", objects)).status_code == 404
    on_summit = browser_for(world.user(ADMIN), host=SUMMIT)
    assert on_summit.get("/c/contoso/exceptions/").status_code == 404
    # Another partner's client, on either host, by any of Northwind's people.
    for email in (ADMIN, STAFF, PARTNER_ADMIN):
        for host in (NORTHWIND, SUMMIT):
            for path in ("/c/fabrikam/", "/c/fabrikam/exceptions/", "/c/fabrikam/connections/1/"):
                assert browser_for(world.user(email), host=host).get(path).status_code == 404, (email, host, path)


def test_memberships_of_another_client_cannot_be_changed_by_id(world):
    other = Membership.objects.get(user__email="admin@tailspin.localhost", client=world.clients["tailspin"])
    admin = browser_for(world.user(ADMIN), host=NORTHWIND)
    assert admin.post(f"/c/contoso/users/{other.pk}/role", {f"m{other.pk}-role": "client_viewer"}).status_code == 404
    assert admin.post(f"/c/contoso/users/{other.pk}/remove").status_code == 404
    other.refresh_from_db()
    assert other.role == Role.CLIENT_ADMIN
