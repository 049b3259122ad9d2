"""The partner console's audit log: every partner-level change writes a row with who did it and what changed,
secrets never reach it, and only the partner's own admins read it."""

import pytest

from branding.services import BRAND_TEXT_FIELDS, brand_for_editing, brand_update
from tenants import services
from tenants.models import Client, Membership, MfaPolicy, Partner, PartnerAuditEvent, PartnerDomain, Role
from tenants.sso_services import sso_connection_save, sso_domain_add, sso_domain_remove, sso_domain_verify
from tests.support import NORTHWIND, PLATFORM, SUMMIT, browser_for

pytestmark = pytest.mark.django_db

SECRET = "team-idp-secret-do-not-log-0123"


@pytest.fixture
def northwind(world):
    # A copy of its own: the world's objects are shared by the session, and a rollback leaves them as changed.
    return Partner.objects.get(pk=world.partners["northwind"].pk)


@pytest.fixture
def admin(world):
    return world.user("admin@northwind.localhost")


def newest(partner, action: str) -> PartnerAuditEvent:
    return PartnerAuditEvent.objects.filter(partner=partner, action=action).latest("at", "id")


def test_a_rebrand_is_recorded_with_what_it_replaced(northwind, admin):
    brand = brand_for_editing(partner=northwind)
    old_colour = brand.primary_color
    brand_update(brand=brand, values={"primary_color": "#0F766E", "login_message": "Welcome back"}, actor=admin)
    event = newest(northwind, "brand.updated")
    assert event.actor == admin and event.actor_email == "admin@northwind.localhost"
    assert "primary color" in event.summary and "login message" in event.summary
    assert event.before["primary_color"] == old_colour and event.after["primary_color"] == "#0F766E"


def test_saving_the_brand_unchanged_records_nothing(northwind, admin):
    brand = brand_for_editing(partner=northwind)
    before = PartnerAuditEvent.objects.filter(partner=northwind).count()
    brand_update(brand=brand, values={"product_name": brand.product_name}, actor=admin)
    assert PartnerAuditEvent.objects.filter(partner=northwind).count() == before


def test_custom_domain_changes_are_recorded(northwind, admin, dns_server):
    domain = services.domain_add(partner=northwind, domain="audit.northwind.example", actor=admin)
    assert newest(northwind, "domain.added").summary.startswith("audit.northwind.example added")
    dns_server.zone[domain.txt_name] = [domain.txt_value]
    assert services.domain_verify(domain=domain, actor=admin).verified
    assert newest(northwind, "domain.verified").actor == admin
    previous = PartnerDomain.objects.get(partner=northwind, is_primary=True)
    services.domain_make_primary(domain=domain, actor=admin)
    event = newest(northwind, "domain.made_primary")
    assert event.before == {"primary": previous.domain} and event.after == {"primary": "audit.northwind.example"}
    services.domain_make_primary(domain=previous, actor=admin)
    domain.refresh_from_db()
    services.domain_remove(domain=domain, actor=admin)
    removed = newest(northwind, "domain.removed")
    assert removed.actor == admin and "audit.northwind.example removed" in removed.summary
    # The verification token is published in DNS, but the log has no use for it.
    assert domain.verification_token not in str(removed.before)


def test_plan_changes_are_recorded_field_by_field(northwind, admin):
    plan = services.plan_create(
        partner=northwind, values={"name": "Audit Plan", "monthly_price": 99, "max_flows": 2}, actor=admin
    )
    assert newest(northwind, "plan.created").summary.startswith("Plan Audit Plan created")
    services.plan_update(plan=plan, values={"max_flows": 4}, actor=admin)
    updated = newest(northwind, "plan.updated")
    assert updated.actor == admin and updated.summary == "Plan Audit Plan changed: max flows"
    assert updated.before == {"max_flows": 2} and updated.after == {"max_flows": 4}
    services.plan_delete(plan=plan, actor=admin)
    assert newest(northwind, "plan.deleted").summary == "Plan Audit Plan deleted"


def test_team_invitations_role_changes_assignments_and_removals_are_recorded(world, northwind, admin):
    contoso, tailspin = world.clients["contoso"], world.clients["tailspin"]
    invited = services.staff_invite(
        partner=northwind, email="Ada@northwind.example", role=Role.PARTNER_STAFF, clients=[contoso], actor=admin
    )
    event = newest(northwind, "team.invited")
    assert event.actor == admin and event.summary == "ada@northwind.example invited as Partner staff"
    assert event.after == {"email": "ada@northwind.example", "role": "partner_staff", "clients": [contoso.name]}

    services.staff_assign(membership=invited, clients=[contoso, tailspin], actor=admin)
    assigned = newest(northwind, "team.clients_assigned")
    assert assigned.summary == "ada@northwind.example now reaches 2 clients"
    assert assigned.after["clients"] == sorted([contoso.name, tailspin.name])

    services.staff_invite(partner=northwind, email="ada@northwind.example", role=Role.PARTNER_ADMIN, actor=admin)
    changed = newest(northwind, "team.role_changed")
    assert changed.summary == "ada@northwind.example is now Partner admin (was Partner staff)"
    assert changed.before["role"] == "partner_staff" and changed.after["role"] == "partner_admin"

    services.partner_member_remove(membership=Membership.objects.get(pk=invited.pk), actor=admin)
    removed = newest(northwind, "team.removed")
    assert removed.actor == admin and removed.summary.startswith("ada@northwind.example removed from the team")


def test_accepting_a_team_invitation_is_recorded_as_the_person_joining(world, northwind, admin):
    contoso_admin = world.user("admin@contoso.localhost")
    invitation = services.staff_invite(
        partner=northwind, email=contoso_admin.email, role=Role.PARTNER_STAFF, clients=[], actor=admin
    )
    services.invitation_accept(invitation=invitation, user=contoso_admin)
    joined = newest(northwind, "team.joined")
    assert joined.actor == contoso_admin and "accepted the invitation as Partner staff" in joined.summary


def test_the_two_factor_policy_change_is_recorded(northwind, admin):
    before = northwind.mfa_policy
    policy = MfaPolicy.EVERYONE if before != MfaPolicy.EVERYONE else MfaPolicy.OPTIONAL
    services.partner_mfa_policy_set(partner=northwind, policy=policy, actor=admin)
    event = newest(northwind, "security.mfa_policy")
    assert event.actor == admin and event.before == {"mfa_policy": before} and event.after == {"mfa_policy": policy}


def test_team_single_sign_on_is_recorded_without_its_secret(northwind, admin, dns_server):
    values = {
        "name": "Northwind Entra ID",
        "server_url": "https://login.northwind.example/v2.0",
        "oauth_client_id": "portal",
        "client_secret": SECRET,
        "default_role": Role.PARTNER_STAFF,
        "group_roles": {},
        "sso_required": False,
        "is_active": True,
    }
    connection = sso_connection_save(partner=northwind, client=None, values=values, actor=admin)
    created = newest(northwind, "sso.created")
    assert created.actor == admin and created.summary == "Team single sign-on through Northwind Entra ID set up"
    sso_connection_save(
        partner=northwind, client=None, values={**values, "sso_required": True}, actor=admin, connection=connection
    )
    updated = newest(northwind, "sso.updated")
    assert updated.before["sso_required"] is False and updated.after["sso_required"] is True
    domain = sso_domain_add(connection=connection, domain="northwind-audit.example", actor=admin)
    assert newest(northwind, "sso.domain_added").after == {"domain": "northwind-audit.example"}
    dns_server.zone[domain.txt_name] = [domain.txt_value]
    assert sso_domain_verify(domain=domain, actor=admin).verified
    assert newest(northwind, "sso.domain_verified").actor == admin
    sso_domain_remove(domain=domain, actor=admin)
    assert newest(northwind, "sso.domain_removed").actor == admin
    for event in PartnerAuditEvent.objects.filter(partner=northwind, action__startswith="sso."):
        assert SECRET not in f"{event.summary} {event.before} {event.after}"


def test_client_suspension_resumption_and_plan_change_are_recorded(world, northwind, admin):
    client = Client.objects.select_related("plan", "partner").get(pk=world.clients["tailspin"].pk)
    services.client_suspend(client=client, actor=admin)
    assert newest(northwind, "client.suspended").summary == "Tailspin Consulting suspended: its syncs stopped"
    services.client_resume(client=client, actor=admin)
    resumed = newest(northwind, "client.resumed")
    assert resumed.actor == admin and resumed.target_id == str(client.pk)
    other = northwind.plans.exclude(pk=client.plan_id).first() or services.plan_create(
        partner=northwind, values={"name": "Audit Other"}, actor=admin
    )
    services.client_plan_change(client=client, plan=other, actor=admin)
    assert newest(northwind, "client.plan_changed").after == {"plan": other.name}


def test_creating_a_client_is_recorded(northwind, admin):
    client = services.client_create(
        partner=northwind, name="Audit Works", slug="audit-works", plan=northwind.plans.first(), actor=admin
    )
    event = newest(northwind, "client.created")
    assert event.actor == admin and event.target_id == str(client.pk)
    assert event.summary.startswith("Audit Works workspace created on plan")


def test_the_brand_editor_records_the_values_it_replaced(world, northwind, admin):
    """The editor's form writes the new values onto the brand while validating: the log must still hold the old."""
    brand = brand_for_editing(partner=northwind)
    data = {field: getattr(brand, field) for field in BRAND_TEXT_FIELDS}
    response = browser_for(admin).post("/partner/brand/", {**data, "support_email": "desk@northwind-audit.example"})
    assert response.status_code == 302
    event = newest(northwind, "brand.updated")
    assert event.summary == "Brand changed: support email"
    assert event.before == {"support_email": brand.support_email}
    assert event.after == {"support_email": "desk@northwind-audit.example"}


def test_the_team_sign_on_form_records_what_it_changed_and_never_the_secret(world, northwind, admin):
    form = {
        "name": "Northwind Okta",
        "server_url": "https://northwind.okta.example",
        "oauth_client_id": "portal",
        "client_secret": SECRET,
        "default_role": Role.PARTNER_STAFF,
        "group_rules": "",
        "is_active": "on",
    }
    browser = browser_for(admin)
    assert browser.post("/partner/team/sign-on/", form).status_code == 302
    assert browser.post("/partner/team/sign-on/", {**form, "name": "Northwind Okta 2"}).status_code == 302
    event = newest(northwind, "sso.updated")
    assert event.before["name"] == "Northwind Okta" and event.after["name"] == "Northwind Okta 2"
    assert SECRET not in f"{event.before} {event.after}"


def test_the_operator_creating_a_partner_starts_its_log(world):
    operator = world.user("operator@sysgenpro.localhost")
    response = browser_for(operator, host=PLATFORM).post(
        "/platform/partners/new",
        {
            "name": "Audit Bay",
            "slug": "audit-bay",
            "domain": "audit-bay.localhost",
            "admin_email": "a@audit-bay.localhost",
        },
    )
    assert response.status_code == 302
    event = PartnerAuditEvent.objects.get(partner__slug="audit-bay")
    assert event.action == "partner.created" and event.actor == operator
    assert event.summary == "Audit Bay set up on audit-bay.localhost, first admin a@audit-bay.localhost"


# --- The page ---------------------------------------------------------------------------------------


def test_partner_admins_read_their_own_log_and_never_another_partners(world, northwind, admin):
    summit = world.partners["summit"]
    services.partner_audit_record(
        partner=northwind, actor=admin, action="plan.updated", summary="Northwind-only change 7Q"
    )
    services.partner_audit_record(
        partner=summit, actor=world.user("admin@summit.localhost"), action="plan.updated", summary="Summit-only 9Z"
    )
    page = browser_for(admin, host=NORTHWIND).get("/partner/audit/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Northwind-only change 7Q" in html and "Summit-only 9Z" not in html
    assert 'href="/partner/audit/"' in html and 'aria-current="page">Audit log' in html

    summit_html = browser_for(world.user("admin@summit.localhost"), host=SUMMIT).get("/partner/audit/")
    assert "Summit-only 9Z" in summit_html.content.decode()
    assert "Northwind-only change 7Q" not in summit_html.content.decode()
    # A Northwind admin on Summit's host is nobody there.
    assert browser_for(admin, host=SUMMIT).get("/partner/audit/").status_code in (403, 404)


def test_partner_staff_and_client_people_cannot_open_the_log(world):
    assert browser_for(world.user("engineer@northwind.localhost")).get("/partner/audit/").status_code == 403
    assert browser_for(world.user("admin@contoso.localhost")).get("/partner/audit/").status_code in (403, 404)
    anonymous = browser_for().get("/partner/audit/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_the_log_filters_by_kind_of_change_and_pages_back(northwind, admin):
    for number in range(55):
        services.partner_audit_record(partner=northwind, actor=admin, action="domain.added", summary=f"Paged {number}")
    services.partner_audit_record(partner=northwind, actor=admin, action="brand.updated", summary="Brand filter 3K")
    browser = browser_for(admin)
    brand_only = browser.get("/partner/audit/", {"action": "brand"}).content.decode()
    assert "Brand filter 3K" in brand_only and "Paged 54" not in brand_only
    assert '<option value="brand" selected>Brand</option>' in brand_only

    domains = browser.get("/partner/audit/", {"action": "domain", "q": "Paged"}, HTTP_HX_REQUEST="true")
    first = domains.content.decode()
    assert first.lstrip().startswith('<div id="events">')  # only the table, for HTMX
    assert "Paged 54" in first and "Paged 4<" not in first
    cursor = first.split("after=")[1].split('"')[0].split("&")[0]
    older = browser.get("/partner/audit/", {"action": "domain", "q": "Paged", "after": cursor}).content.decode()
    assert "Paged 4<" in older and "Paged 54" not in older
