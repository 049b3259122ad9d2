"""The partner's team: invitations, client assignments that the switcher and every page respect, removal."""

import pytest
from django.core import mail

from tenants import services
from tenants.models import Membership, Role, User
from tests.support import NORTHWIND, browser_for, switcher_entries

pytestmark = pytest.mark.django_db


def test_invited_staff_reach_exactly_the_clients_assigned_to_them(world, django_capture_on_commit_callbacks):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            "/partner/team/invite",
            {
                "email": "Nora@northwind.example",
                "full_name": "Nora Staff",
                "role": Role.PARTNER_STAFF,
                "clients": [world.clients["tailspin"].pk, world.clients["wingtip"].pk],
            },
        )
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["nora@northwind.example"]
    assert mail.outbox[0].from_email.startswith("Northwind Advisory <")
    team = admin.get("/partner/team/").content.decode()
    assert "Nora Staff" in team and "nora@northwind.example · invited" in team  # until she signs in

    nora = browser_for(User.objects.get(email="nora@northwind.example"), host=NORTHWIND)
    home = nora.get("/partner/").content.decode()
    assert switcher_entries(home) == ["Tailspin Consulting", "Wingtip Partners"]
    assert "Contoso Engineering" not in home
    assert nora.get("/c/contoso/").status_code == 404
    assert nora.get("/partner/clients/contoso/").status_code == 404
    assert nora.get("/c/wingtip/").status_code == 200
    assert nora.get("/partner/team/").status_code == 403
    team = admin.get("/partner/team/").content.decode()
    assert "Nora Staff" in team and "nora@northwind.example · invited" not in team  # signed in (as SSO does)


def test_changing_a_staff_members_clients_changes_what_they_reach(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    engineer_membership = Membership.objects.get(user__email="engineer@northwind.localhost")
    response = admin.post(
        f"/partner/team/{engineer_membership.pk}/clients",
        {f"m{engineer_membership.pk}-clients": [world.clients["wingtip"].pk]},
    )
    assert response.status_code == 302
    engineer = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    assert switcher_entries(engineer.get("/partner/").content.decode()) == ["Wingtip Partners"]
    assert engineer.get("/c/contoso/").status_code == 404


def test_staff_cannot_be_given_another_partners_client(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    engineer_membership = Membership.objects.get(user__email="engineer@northwind.localhost")
    admin.post(
        f"/partner/team/{engineer_membership.pk}/clients",
        {f"m{engineer_membership.pk}-clients": [world.clients["fabrikam"].pk]},
    )
    assigned = set(engineer_membership.assigned_clients.values_list("slug", flat=True))
    assert assigned == {"contoso", "tailspin"}


def test_inviting_someone_already_on_the_team_comes_back_with_a_reason(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    response = admin.post(
        "/partner/team/invite",
        {"email": "engineer@northwind.localhost", "role": Role.PARTNER_STAFF},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<form id="invite-form"')
    assert "already on your team" in page


def test_a_member_is_removed_but_nobody_removes_themselves_or_the_last_admin(world):
    admin_user = world.user("admin@northwind.localhost")
    admin = browser_for(admin_user, host=NORTHWIND)
    own = Membership.objects.get(user=admin_user, partner=world.partners["northwind"])
    page = admin.post(f"/partner/team/{own.pk}/remove", follow=True).content.decode()
    assert "You cannot remove yourself" in page
    assert Membership.objects.filter(pk=own.pk).exists()

    engineer = Membership.objects.get(user__email="engineer@northwind.localhost")
    admin.post(f"/partner/team/{engineer.pk}/remove")
    assert not Membership.objects.filter(pk=engineer.pk).exists()
    assert browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND).get("/partner/").status_code == 403

    with pytest.raises(services.MemberRemovalRefused, match="at least one admin"):
        services.partner_member_remove(membership=own, actor=world.user("operator@sysgenpro.localhost"))


def test_the_team_page_is_for_partner_admins(world):
    assert (
        browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND).get("/partner/team/").status_code == 403
    )
    summit_admin = browser_for(world.user("admin@summit.localhost"), host=NORTHWIND)
    assert summit_admin.get("/partner/team/").status_code == 403
    engineer = Membership.objects.get(user__email="engineer@northwind.localhost")
    summit_on_summit = browser_for(world.user("admin@summit.localhost"), host="summit.localhost")
    assert summit_on_summit.post(f"/partner/team/{engineer.pk}/remove").status_code == 404
