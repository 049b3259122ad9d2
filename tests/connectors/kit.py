"""What the connector tests share: a vendor's sandbox served for a module over real HTTP on loopback, a connector
pointed at it, and its pages read whole."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from connectors.http import HttpPolicy, InMemoryMetrics, InMemoryTokenBucket
from connectors.sandbox.server import self_signed_certificate, serve_in_thread


def sandbox_fixture(make_app: Callable[[], Any]):
    """A module-scoped `sandbox` fixture: the app `make_app()` builds, served in a thread for the module's tests."""

    @pytest.fixture(scope="module")
    def sandbox():
        running = serve_in_thread(make_app())
        yield running
        running.stop()

    return sandbox


def sandbox_connector(
    connector_class,
    sandbox,
    credentials,
    *,
    backoff: tuple[float, float] = (0.05, 0.2),
    connection_key: str = "default",
    **policy,
):
    """`connector_class` against `sandbox`, with a token bucket and metrics of its own and retries short enough for
    a test (`backoff` is the base and the longest wait); `policy` overrides any of the policy's settings."""
    backoff_base, backoff_max = backoff
    policy = {
        "budget": InMemoryTokenBucket(),
        "metrics": InMemoryMetrics(),
        "backoff_base": backoff_base,
        "backoff_max": backoff_max,
        **policy,
    }
    return connector_class(
        base_url=sandbox.url,
        credentials=credentials,
        policy=HttpPolicy.for_sandbox(sandbox.url, **policy),
        connection_key=connection_key,
    )


def connector_maker(connector_class, default_credentials, *, own_connection: bool = False, **settings):
    """A test module's `connect(sandbox, credentials=None, **policy)`: sandbox_connector with the module's defaults
    (`settings`); `own_connection` gives each connector a connection key of its own, so none shares another's
    tokens or budget."""

    def connect(sandbox, credentials=None, **policy):
        key = uuid.uuid4().hex if own_connection else "default"
        return sandbox_connector(
            connector_class, sandbox, credentials or default_credentials, connection_key=key, **{**settings, **policy}
        )

    return connect


def pages_read(connector, object_name: str, **kwargs) -> list:
    """Every page a read yields, in order."""
    return list(connector.read(object_name, **kwargs))


def records_read(connector, object_name: str, **kwargs) -> list:
    """The records of every page a read yields, in order."""
    return [record for page in connector.read(object_name, **kwargs) for record in page.records]


def read_whole(connector, object_name: str, **kwargs) -> tuple[list, list, list]:
    """Every page a read yields, with their records and their rejects."""
    pages = list(connector.read(object_name, **kwargs))
    return pages, [r for p in pages for r in p.records], [r for p in pages for r in p.rejects]


def simple_salesforce_for(url: str, credentials) -> Any:
    """simple-salesforce, unchanged, signed in at `url` with the demo user's OAuth password flow."""
    from simple_salesforce import Salesforce

    form = {k: credentials[k] for k in ("client_id", "client_secret", "username", "password")}
    token = requests.post(f"{url}/services/oauth2/token", data={"grant_type": "password", **form}, timeout=5).json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"])


@contextmanager
def simple_salesforce_on(app, credentials, directory, monkeypatch) -> Iterator[Any]:
    """simple-salesforce signed in to `app` served over HTTPS for the block (it always builds https:// URLs); the
    test certificate, made in `directory`, is trusted through REQUESTS_CA_BUNDLE, so the client is untouched."""
    cert_path, key_path = self_signed_certificate(directory)
    running = serve_in_thread(app, tls=(cert_path, key_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert_path)
    try:
        yield simple_salesforce_for(running.url, credentials)
    finally:
        running.stop()
