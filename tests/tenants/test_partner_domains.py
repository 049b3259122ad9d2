"""Custom domains: a partner adds one, gets the DNS records to create, and it serves only once verified.

Verification does a real DNS query over UDP, answered by a small DNS server on loopback.
"""

import socket
import threading

import dns.message
import dns.rcode
import dns.rrset
import pytest
from django.test import override_settings

from tenants import services
from tenants.models import PartnerDomain
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


class LoopbackDns:
    """Answers TXT questions from `zone` (name -> list of strings); other names get NXDOMAIN."""

    def __init__(self):
        self.zone: dict[str, list[str]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            name = query.question[0].name.to_text().rstrip(".")
            if name not in self.zone:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif self.zone[name]:
                quoted = [f'"{value}"' for value in self.zone[name]]
                response.answer.append(dns.rrset.from_text(f"{name}.", 60, "IN", "TXT", *quoted))
            self.sock.sendto(response.to_wire(), peer)

    def close(self):
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def admin(world):
    return browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)


def test_adding_a_domain_shows_the_dns_records_to_create(world, admin):
    response = admin.post("/partner/domains/add", {"domain": "https://Connect.Northwind.example/"})
    assert response.status_code == 302
    domain = PartnerDomain.objects.get(domain="connect.northwind.example")
    assert domain.requires_verification and domain.verified_at is None and not domain.is_primary
    page = admin.get("/partner/domains/").content.decode()
    assert "Waiting for DNS" in page
    assert "_portal-challenge.connect.northwind.example" in page
    assert f"portal-verify={domain.verification_token}" in page
    assert '<code class="copyable">northwind.localhost</code>' in page  # the CNAME target


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("not a host", "Enter just a host name"),
        ("connect.example.com:8443", "Enter just a host name"),
        ("localhost", "Enter just a host name"),
        ("northwind.localhost", "already in use"),
    ],
)
def test_unusable_domains_are_refused_with_a_reason(admin, typed, reason):
    response = admin.post("/partner/domains/add", {"domain": typed}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200  # htmx 2 swaps no 4xx; the partial carries the error
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="domain-panel"') and reason in page


def test_an_unverified_domain_serves_nothing(world):
    services.domain_add(partner=world.partners["northwind"], domain="portal.northwind.example", actor=None)
    response = browser_for(host="portal.northwind.example").get("/accounts/login/")
    assert response.status_code == 404
    assert "Northwind" not in response.content.decode()


def test_verification_reads_the_txt_record_and_then_the_domain_serves(world, admin, dns_server):
    domain = services.domain_add(partner=world.partners["northwind"], domain="connect.northwind.example", actor=None)

    page = admin.post(f"/partner/domains/{domain.pk}/verify", HTTP_HX_REQUEST="true").content.decode()
    assert "No DNS record exists at _portal-challenge.connect.northwind.example yet" in page

    dns_server.zone[domain.txt_name] = ["portal-verify=someone-elses-token"]
    page = admin.post(f"/partner/domains/{domain.pk}/verify", HTTP_HX_REQUEST="true").content.decode()
    assert "holds portal-verify=someone-elses-token, not this domain&#x27;s token" in page
    assert browser_for(host="connect.northwind.example").get("/accounts/login/").status_code == 404

    dns_server.zone[domain.txt_name] = ["v=spf1 -all", domain.txt_value]
    page = admin.post(f"/partner/domains/{domain.pk}/verify", HTTP_HX_REQUEST="true").content.decode()
    assert "Verified: the TXT record matches." in page
    domain.refresh_from_db()
    assert domain.verified_at is not None
    login = browser_for(host="connect.northwind.example").get("/accounts/login/")
    assert login.status_code == 200 and "Northwind Connect" in login.content.decode()


def test_the_records_a_partner_is_shown_do_not_name_the_platform(world, admin):
    services.domain_add(partner=world.partners["northwind"], domain="records.northwind.example", actor=None)
    page = admin.get("/partner/domains/").content.decode()
    assert "_portal-challenge.records.northwind.example" in page and "portal-verify=" in page
    assert "sysgenpro" not in page.lower()


def test_a_record_published_under_the_former_name_still_verifies(world, dns_server):
    domain = services.domain_add(partner=world.partners["northwind"], domain="early.northwind.example", actor=None)
    dns_server.zone[f"_sysgenpro-challenge.{domain.domain}"] = [f"sysgenpro-verify={domain.verification_token}"]
    check = services.domain_verify(domain=domain)
    assert check.verified
    domain.refresh_from_db()
    assert domain.verified_at is not None


def test_a_name_without_a_txt_record_is_told_apart(world, dns_server):
    domain = services.domain_add(partner=world.partners["northwind"], domain="bare.northwind.example", actor=None)
    dns_server.zone[domain.txt_name] = []
    check = services.domain_verify(domain=domain)
    assert not check.verified and "has no TXT record" in check.message


def test_a_dns_server_that_does_not_answer_is_reported_plainly(world):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with override_settings(
            DOMAIN_VERIFY_NAMESERVERS=[f"127.0.0.1:{silent.getsockname()[1]}"], DOMAIN_VERIFY_TIMEOUT_SECONDS=0.5
        ):
            domain = services.domain_add(
                partner=world.partners["northwind"], domain="slow.northwind.example", actor=None
            )
            check = services.domain_verify(domain=domain)
    finally:
        silent.close()
    assert not check.verified and "timed out" in check.message


def test_only_a_serving_domain_becomes_primary_and_the_primary_stays(world, admin):
    pending = services.domain_add(partner=world.partners["northwind"], domain="pending.northwind.example", actor=None)
    page = admin.post(f"/partner/domains/{pending.pk}/primary", follow=True).content.decode()
    assert "Verify the domain before making it primary." in page
    primary = PartnerDomain.objects.get(domain="northwind.localhost")
    page = admin.post(f"/partner/domains/{primary.pk}/remove", follow=True).content.decode()
    assert PartnerDomain.objects.filter(pk=primary.pk).exists()
    assert "make another domain primary first" in page
    admin.post(f"/partner/domains/{pending.pk}/remove")
    assert not PartnerDomain.objects.filter(pk=pending.pk).exists()


def test_staff_and_other_partners_cannot_manage_domains(world):
    engineer = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    assert engineer.get("/partner/domains/").status_code == 403
    primary = PartnerDomain.objects.get(domain="northwind.localhost")
    summit = browser_for(world.user("admin@summit.localhost"), host="summit.localhost")
    assert summit.post(f"/partner/domains/{primary.pk}/verify").status_code == 404
