"""Invitations grant a role only through the link sent to the address, to the account that owns it; a
partner's own people reach its clients through the partner's assignments only."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.db import connection

from integrations.models import AuditEvent
from tenants import services
from tenants.models import Invitation, Membership, Role, User
from tests.support import NORTHWIND, SUMMIT, browser_for, user_who_can_sign_in

pytestmark = pytest.mark.django_db

PASSWORD = "fabrikam-viewer-2026"


def signed_in(email: str, host: str, password: str = PASSWORD):
    browser = browser_for(host=host)
    response = browser.post("/accounts/login/", {"login": email, "password": password})
    assert response.status_code == 302, response.content.decode()[:500]
    return browser


def links_in(message) -> list[str]:
    return re.findall(r"https?://\S+", message.body)


def test_an_address_typed_into_a_profile_collects_no_invitation(world, django_capture_on_commit_callbacks):
    """The audit's repro: a Fabrikam viewer claims a Contoso hire's address, Contoso's admin invites
    that address as finance, and the viewer would read Contoso's exceptions."""
    viewer = user_who_can_sign_in("viewer@fabrikam.localhost", PASSWORD)
    Membership.objects.create(user=viewer, client=world.clients["fabrikam"], role=Role.CLIENT_VIEWER)
    attacker = signed_in(viewer.email, SUMMIT)
    attacker.post("/accounts/email/", {"action_add": "", "email": "pending-hire@contoso.localhost"})
    attacker.post("/accounts/email/", {"action_primary": "", "email": "pending-hire@contoso.localhost"})
    viewer.refresh_from_db()
    assert viewer.email == "viewer@fabrikam.localhost"  # an unconfirmed address cannot become primary
    assert not EmailAddress.objects.filter(email="pending-hire@contoso.localhost", verified=True).exists()

    contoso_admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        invited = contoso_admin.post(
            "/c/contoso/users/invite",
            {"email": "pending-hire@contoso.localhost", "role": Role.CLIENT_FINANCE, "full_name": "New Hire"},
        )
    assert invited.status_code == 302
    invitations = [m for m in mail.outbox if m.to == ["pending-hire@contoso.localhost"]]
    assert len(invitations) == 1  # to the address, not to the account that claimed it
    assert not Membership.objects.filter(user=viewer, client=world.clients["contoso"]).exists()
    assert attacker.get("/c/contoso/exceptions/export.csv").status_code == 404


def test_someone_with_an_account_joins_only_by_accepting_the_emailed_link(world, django_capture_on_commit_callbacks):
    tom = world.user("admin@tailspin.localhost")
    contoso_admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        contoso_admin.post("/c/contoso/users/invite", {"email": tom.email, "role": Role.CLIENT_VIEWER})
    (message,) = [m for m in mail.outbox if m.to == [tom.email]]
    (link,) = [url for url in links_in(message) if "/accounts/invitations/" in url]
    assert link.startswith(f"http://{NORTHWIND}") and "Sign in with your account" in message.body
    path = link.split(NORTHWIND, 1)[1].lstrip(":0123456789")
    people = contoso_admin.get("/c/contoso/users/").content.decode()
    assert "has an account, invited: joins on accepting" in people

    tom_browser = browser_for(tom, host=NORTHWIND)
    assert tom_browser.get("/c/contoso/").status_code == 404  # nothing granted yet
    assert browser_for(tom, host=SUMMIT).get(path).status_code == 404  # the link is the inviting partner's
    someone_else = browser_for(world.user("viewer@contoso.localhost"), host=NORTHWIND)
    refused = someone_else.post(path)
    assert refused.status_code == 403 and f"sent to {tom.email}" in refused.content.decode()
    assert browser_for(host=NORTHWIND).get(path)["Location"].startswith("/accounts/login/?next=")

    offer = tom_browser.get(path)
    assert offer.status_code == 200 and "Accept and join" in offer.content.decode()
    accepted = tom_browser.post(path)
    assert accepted.status_code == 302 and accepted["Location"] == "/c/contoso/"
    assert tom_browser.get("/c/contoso/").status_code == 200
    assert Membership.objects.get(user=tom, client=world.clients["contoso"]).role == Role.CLIENT_VIEWER
    assert EmailAddress.objects.get(user=tom, email=tom.email).verified
    assert not Invitation.objects.filter(user=tom).exists()
    assert tom_browser.get(path).status_code == 404  # used up
    connection.set_tenant(world.clients["contoso"])
    assert AuditEvent.objects.filter(action="member.joined", actor_email=tom.email).exists()


def test_partner_staff_cannot_invite_themselves_into_a_client(world):
    engineer = world.user("engineer@northwind.localhost")
    staff = browser_for(engineer, host=NORTHWIND)
    response = staff.post("/c/contoso/users/invite", {"email": engineer.email, "role": Role.CLIENT_ADMIN})
    assert response.status_code == 422
    assert "on Northwind Advisory&#x27;s team" in response.content.decode()
    assert not Membership.objects.filter(user=engineer, client__isnull=False).exists()


def test_a_client_admin_cannot_demote_the_partner_admin_into_a_viewer(world):
    partner_admin = world.user("admin@northwind.localhost")
    client_admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    response = client_admin.post("/c/contoso/users/invite", {"email": partner_admin.email, "role": Role.CLIENT_VIEWER})
    assert response.status_code == 422
    assert not Membership.objects.filter(user=partner_admin, client__isnull=False).exists()
    assert browser_for(partner_admin, host=NORTHWIND).get("/c/contoso/connections/").status_code == 200


def test_a_client_role_held_by_partner_staff_grants_nothing_once_unassigned(world):
    """Data from before: a staff member who also holds a client role keeps no reach of their own."""
    engineer = world.user("engineer@northwind.localhost")
    Membership.objects.create(user=engineer, client=world.clients["wingtip"], role=Role.CLIENT_ADMIN)
    Membership.objects.create(user=engineer, client=world.clients["contoso"], role=Role.CLIENT_VIEWER)
    staff = browser_for(engineer, host=NORTHWIND)
    assert staff.get("/c/wingtip/").status_code == 404  # never assigned
    response = staff.get("/c/contoso/connections/")  # assigned: acts as partner staff, not as a viewer
    assert response.status_code == 200
    team = Membership.objects.get(user=engineer, partner=world.partners["northwind"])
    services.staff_assign(membership=team, clients=[world.clients["tailspin"]])
    assert browser_for(engineer, host=NORTHWIND).get("/c/contoso/").status_code == 404


def test_joining_a_partners_team_drops_client_roles_under_that_partner(world, django_capture_on_commit_callbacks):
    frank = world.user("finance@contoso.localhost")
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            "/partner/team/invite",
            {"email": frank.email, "role": Role.PARTNER_STAFF, "clients": [world.clients["tailspin"].pk]},
        )
    assert response.status_code == 302
    assert not Membership.objects.filter(user=frank, partner__isnull=False).exists()
    team = admin.get("/partner/team/").content.decode()
    assert "has an account, invited: joins on accepting" in team and "Tailspin Consulting" in team
    (message,) = [m for m in mail.outbox if m.to == [frank.email]]
    (link,) = [url for url in links_in(message) if "/accounts/invitations/" in url]
    frank_browser = browser_for(frank, host=NORTHWIND)
    assert frank_browser.post(link.split(NORTHWIND, 1)[1].lstrip(":0123456789"))["Location"] == "/partner/"
    assert not Membership.objects.filter(user=frank, client__isnull=False).exists()
    assert frank_browser.get("/c/contoso/").status_code == 404  # not assigned to Contoso
    assert frank_browser.get("/c/tailspin/").status_code == 200
    connection.set_tenant(world.clients["contoso"])
    assert AuditEvent.objects.filter(action="member.removed", summary__contains="joined Northwind Advisory").exists()


def test_an_expired_invitation_is_refused(world, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    tom = world.user("admin@tailspin.localhost")
    with django_capture_on_commit_callbacks(execute=True):
        invitation = services.user_invite(email=tom.email, role=Role.CLIENT_VIEWER, client=world.clients["contoso"])
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    invitation.refresh_from_db()
    with pytest.raises(services.InvitationRefused, match="expired"):
        services.invitation_accept(invitation=invitation, user=tom)
    assert not Membership.objects.filter(user=tom, client=world.clients["contoso"]).exists()


def test_someone_new_gets_the_role_and_a_link_on_the_inviting_partners_host(world, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        membership = services.user_invite(
            email="New.Colleague@fabrikam.localhost", role=Role.CLIENT_FINANCE, client=world.clients["fabrikam"]
        )
    assert isinstance(membership, Membership)
    user = User.objects.get(email="new.colleague@fabrikam.localhost")
    assert not user.has_usable_password()
    (link,) = [url for url in links_in(mail.outbox[0]) if "/accounts/password/reset/key/" in url]
    assert link.startswith(f"http://{SUMMIT}")
