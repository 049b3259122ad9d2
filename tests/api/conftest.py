"""API tests: keys made through the same service as the pages, calls made over HTTP with a bearer key."""

from __future__ import annotations

import json
import time

import pytest
from django.core.cache import cache
from django.test import Client as HttpClient

from api.calls import RATE_WINDOW_SECONDS
from api.models import CLIENT_FAMILIES, PARTNER_FAMILIES
from api.services import api_key_create
from tests.support import NORTHWIND

ALL_CLIENT = [f"{family}:write" for family in CLIENT_FAMILIES]
ALL_PARTNER = [f"{family}:write" for family in PARTNER_FAMILIES + CLIENT_FAMILIES]


class Api:
    """A program calling the API on `host` with one key."""

    def __init__(self, secret: str | None, host: str = NORTHWIND):
        self.http = HttpClient(HTTP_HOST=host)
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(self, path, **params):
        return self.http.get(f"/api/v1{path}", params, headers=self.headers)

    def post(self, path, body=None, **headers):
        return self.http.post(
            f"/api/v1{path}",
            json.dumps(body or {}),
            content_type="application/json",
            headers={**self.headers, **headers},
        )

    def patch(self, path, body=None, **headers):
        return self.http.patch(
            f"/api/v1{path}",
            json.dumps(body or {}),
            content_type="application/json",
            headers={**self.headers, **headers},
        )


def make_key(user, partner, *, client=None, scopes=None, **extra):
    scopes = scopes or (ALL_CLIENT if client is not None else ALL_PARTNER)
    return api_key_create(partner=partner, client=client, name="Test program", scopes=scopes, actor=user, **extra)


@pytest.fixture(autouse=True)
def _fresh_rate_windows():
    """Each test starts with empty throttle windows and idempotency slots (this session's Redis db), far
    enough from the end of a minute that its calls fall in one throttle window."""
    seconds_left = RATE_WINDOW_SECONDS - time.time() % RATE_WINDOW_SECONDS
    if seconds_left < 8:
        time.sleep(seconds_left + 0.05)
    cache.clear()
    yield


@pytest.fixture
def northwind_key(world):
    return make_key(world.user("admin@northwind.localhost"), world.partners["northwind"])


@pytest.fixture
def contoso_key(world):
    return make_key(world.user("admin@contoso.localhost"), world.partners["northwind"], client=world.clients["contoso"])
