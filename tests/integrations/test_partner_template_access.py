"""Who reaches a partner's templates: its admin does everything, its staff read, clients see what is deployed
to them, another partner reaches nothing.
"""

from __future__ import annotations

import pytest

from integrations.partner_templates.services import (
    template_deploy,
)
from tenants.models import IntegrationTemplate
from tests.integrations.partner_templates_support import PARTNER_ADMIN, STAFF, saved  # noqa: F401 -- fixtures
from tests.support import NORTHWIND, SUMMIT, browser_for

pytestmark = pytest.mark.django_db


def template_writes(template, deployment) -> tuple[str, ...]:
    """Every address that changes a saved template or one of its deployments."""
    return (
        f"/partner/templates/{template.pk}/versions/new",
        f"/partner/templates/{template.pk}/deploy",
        f"/partner/templates/{template.pk}/upgrade",
        f"/partner/templates/{template.pk}/deployments/{deployment.pk}/upgrade",
        f"/partner/templates/{template.pk}/edit",
        f"/partner/templates/{template.pk}/deployments/{deployment.pk}/withdraw",
        f"/partner/templates/{template.pk}/delete",
    )


def test_another_partner_reaches_none_of_the_templates_by_id(world, saved):
    template = saved.template
    template_deploy(
        template=template, version=saved, clients=[world.clients["tailspin"]], actor=world.user(PARTNER_ADMIN)
    )
    deployment = template.deployments.get()
    summit = browser_for(world.user("admin@summit.localhost"), host=SUMMIT)
    assert "Time to invoice" not in summit.get("/partner/templates/").content.decode()
    for path in (
        f"/partner/templates/{template.pk}/",
        f"/partner/templates/{template.pk}/versions/new",
    ):
        assert summit.get(path).status_code == 404, path
    for path in template_writes(template, deployment):
        data = {"version": saved.pk, "clients": [world.clients["fabrikam"].pk], "name": "Taken over"}
        assert summit.post(path, data).status_code == 404, path
    assert IntegrationTemplate.objects.filter(pk=template.pk, name="Time to invoice").exists()
    assert template.deployments.filter(pk=deployment.pk).exists()
    # Summit cannot save Northwind's client's flow either: Contoso is not among its clients.
    response = summit.post(
        "/partner/templates/new", {"client": world.clients["contoso"].pk, "flow": saved.flow_id, "name": "Stolen"}
    )
    assert response.status_code == 422
    assert not IntegrationTemplate.objects.filter(partner=world.partners["summit"]).exists()
    # And Northwind cannot deploy to Summit's client.
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    response = admin.post(
        f"/partner/templates/{template.pk}/deploy", {"version": saved.pk, "clients": [world.clients["fabrikam"].pk]}
    )
    assert response.status_code == 422
    assert not template.deployments.filter(client=world.clients["fabrikam"]).exists()


def test_partner_staff_read_templates_but_cannot_save_deploy_upgrade_rename_withdraw_or_delete(world, saved):
    template = saved.template
    template_deploy(
        template=template,
        version=saved,
        clients=[world.clients["tailspin"], world.clients["wingtip"]],
        actor=world.user(PARTNER_ADMIN),
    )
    deployment = template.deployments.get(client=world.clients["tailspin"])
    staff = browser_for(world.user(STAFF), host=NORTHWIND)
    assert "Time to invoice" in staff.get("/partner/templates/").content.decode()
    page = staff.get(f"/partner/templates/{template.pk}/").content.decode()
    assert "Tailspin Consulting" in page and "Wingtip Partners" not in page  # only the clients assigned to them
    assert 'method="post"' not in page.split("<main", 1)[1]  # the page's forms; signing out is in the header
    assert "Delete template" not in page and "Withdraw" not in page
    assert staff.get("/partner/templates/new").status_code == 403
    for path in ("/partner/templates/new", *template_writes(template, deployment)):
        data = {"version": saved.pk, "clients": [world.clients["contoso"].pk], "name": "Renamed by staff"}
        assert staff.post(path, data).status_code == 403, path
    assert not template.deployments.filter(client=world.clients["contoso"]).exists()
    assert IntegrationTemplate.objects.filter(pk=template.pk, name="Time to invoice").exists()
    assert template.deployments.filter(pk=deployment.pk).exists()


# url name -> (roles that may GET it, roles that may POST to it); None: the method is not served (405).
ADMIN_ONLY = {PARTNER_ADMIN}
CONSOLE = {PARTNER_ADMIN, STAFF}
ACCESS = {
    "partner_templates": (CONSOLE, None),
    "partner_template_new": (ADMIN_ONLY, ADMIN_ONLY),
    "partner_template": (CONSOLE, None),
    "partner_template_version_new": (ADMIN_ONLY, ADMIN_ONLY),
    "partner_template_deploy": (None, ADMIN_ONLY),
    "partner_template_upgrade_all": (None, ADMIN_ONLY),
    "partner_template_rollout": (CONSOLE, None),
    "partner_template_upgrade": (None, ADMIN_ONLY),
    "partner_template_edit": (None, ADMIN_ONLY),
    "partner_template_withdraw": (None, ADMIN_ONLY),
    "partner_template_delete": (None, ADMIN_ONLY),
}
PEOPLE = sorted([PARTNER_ADMIN, STAFF, "admin@contoso.localhost", "viewer@contoso.localhost", "admin@summit.localhost"])


def test_the_access_table_covers_every_template_url():
    from portal.urls_partner import partner_console

    names = {entry.name for entry in partner_console if entry.name and entry.name.startswith("partner_template")}
    assert names == set(ACCESS)


@pytest.mark.parametrize("email", PEOPLE)
def test_each_role_reaches_the_template_pages_it_may_and_is_refused_the_rest(world, saved, email):
    from django.urls import reverse

    template = saved.template
    template_deploy(
        template=template, version=saved, clients=[world.clients["tailspin"]], actor=world.user(PARTNER_ADMIN)
    )
    args = {
        "partner_template": [template.pk],
        "partner_template_version_new": [template.pk],
        "partner_template_deploy": [template.pk],
        "partner_template_upgrade_all": [template.pk],
        "partner_template_rollout": [template.pk],
        "partner_template_upgrade": [template.pk, template.deployments.get().pk],
        "partner_template_edit": [template.pk],
        "partner_template_withdraw": [template.pk, template.deployments.get().pk],
        "partner_template_delete": [template.pk],
    }
    browser = browser_for(world.user(email), host=NORTHWIND)
    problems = []
    for name, (get_roles, post_roles) in ACCESS.items():
        path = reverse(name, urlconf="portal.urls_partner", args=args.get(name, []))
        status = browser.get(path).status_code
        expected = {405} if get_roles is None else ({200} if email in get_roles else {403})
        if status not in expected:
            problems.append(f"GET {name}: {status}, expected {sorted(expected)}")
        status = browser.post(path, {}).status_code
        expected = {405} if post_roles is None else ({200, 302, 422} if email in post_roles else {403})
        if status not in expected:
            problems.append(f"POST {name}: {status}, expected {sorted(expected)}")
    assert not problems, "\n".join(problems)
