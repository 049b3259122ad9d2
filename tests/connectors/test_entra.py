"""Entra client-credentials tokens (connectors/entra.py) against the Entra endpoint the Microsoft sandboxes serve."""

from __future__ import annotations

import time

import pytest

from connectors.base import AuthenticationFailed, ConnectorError
from connectors.dynamics365.sandbox import DEMO_CREDENTIALS, TENANT_ID, create_app
from connectors.entra import REFRESH_MARGIN, EntraCredential, EntraTokens
from connectors.http import HttpPolicy, InMemoryMetrics, InMemoryTokenBucket, VendorSession
from tests.connectors.kit import sandbox_fixture

TOKEN_PATH = f"/{TENANT_ID}/oauth2/v2.0/token"


sandbox = sandbox_fixture(create_app)


@pytest.fixture(autouse=True)
def clean(sandbox):
    sandbox.reset()


def tokens_for(sandbox, **overrides) -> EntraTokens:
    session = VendorSession(
        policy=HttpPolicy.for_sandbox(sandbox.url, budget=InMemoryTokenBucket(), metrics=InMemoryMetrics()),
        vendor="entra",
    )
    values = {
        "tenant_id": DEMO_CREDENTIALS["tenant_id"],
        "client_id": DEMO_CREDENTIALS["client_id"],
        "client_secret": DEMO_CREDENTIALS["client_secret"],
        "scope": f"{sandbox.url}/.default",
        "authority": sandbox.url,
        **overrides,
    }
    return EntraTokens(session=session, **values)


def test_a_token_is_fetched_once_and_kept_until_near_expiry(sandbox):
    tokens = tokens_for(sandbox)
    first = tokens.token()
    assert tokens.token() == first
    assert sandbox.stats()["by_path"][TOKEN_PATH] == {"200": 1}
    assert first in tokens.session.secrets  # the policy redacts it from every log line
    tokens._expires_at = time.time() + REFRESH_MARGIN - 1  # about to expire
    assert tokens.token() != first
    assert sandbox.stats()["by_path"][TOKEN_PATH] == {"200": 2}


def test_a_rejected_token_is_replaced_but_only_by_the_first_who_saw_it_fail(sandbox):
    tokens = tokens_for(sandbox)
    old = tokens.token()
    new = tokens.token(rejected=old)
    assert new != old
    assert tokens.token(rejected=old) == new  # a second thread reporting the same stale token reuses the new one


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        ({"client_secret": "wrong"}, "(AADSTS7000215): the client secret is wrong"),
        ({"client_id": "00000000-0000-0000-0000-000000000000"}, "(AADSTS700016): no app with this client id"),
        ({"tenant_id": "contoso.onmicrosoft.example"}, "(AADSTS90002): the tenant id or domain is unknown"),
        ({"scope": "https://elsewhere.example/.default"}, "(AADSTS70011): the scope is not valid"),
        ({"client_secret": ""}, "needs the tenant id, the client id and a client secret"),
    ],
)
def test_refusals_say_what_to_fix(sandbox, overrides, sentence):
    with pytest.raises(AuthenticationFailed) as refused:
        tokens_for(sandbox, **overrides).token()
    assert sentence in str(refused.value)


def test_the_credential_hands_tokens_to_microsoft_clients_for_its_own_scope_only(sandbox):
    tokens = tokens_for(sandbox)
    credential = EntraCredential(tokens)
    access = credential.get_token(f"{sandbox.url}/.default")
    assert access.token == tokens.token() and access.expires_on > time.time() + 3000
    with pytest.raises(ConnectorError):
        credential.get_token("https://graph.microsoft.com/.default")
