"""What the connector tests share: a vendor's sandbox served for a module over real HTTP on loopback, a connector
pointed at it, and its pages read whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.http import HttpPolicy, InMemoryMetrics, InMemoryTokenBucket
from connectors.sandbox.server import serve_in_thread


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


def records_read(connector, object_name: str, **kwargs) -> list:
    """The records of every page a read yields, in order."""
    return [record for page in connector.read(object_name, **kwargs) for record in page.records]


def read_whole(connector, object_name: str, **kwargs) -> tuple[list, list, list]:
    """Every page a read yields, with their records and their rejects."""
    pages = list(connector.read(object_name, **kwargs))
    return pages, [r for p in pages for r in p.records], [r for p in pages for r in p.rejects]
