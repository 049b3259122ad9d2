"""What the partner-console tests share: a DNS server on loopback that domain verification asks."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.tenants.test_partner_domains import LoopbackDns


@pytest.fixture
def dns_server():
    """A loopback DNS server the portal verifies domains against (its TXT zone is the test's to fill)."""
    server = LoopbackDns()
    with override_settings(DOMAIN_VERIFY_NAMESERVERS=[server.address], DOMAIN_VERIFY_TIMEOUT_SECONDS=2):
        yield server
    server.close()
