"""Connections: credentials encrypted at rest and rotatable, secrets never read back, the guard's words."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from integrations.models import Connection
from integrations.services.connections import connection_create, connection_credentials_rotate, connection_test
from portal.crypto import credentials_decrypt

pytestmark = pytest.mark.django_db


def test_credentials_are_encrypted_at_rest(in_workspace):
    connection = connection_create(
        name="Kantata",
        vendor="kantata",
        base_url="https://api.mavenlink.com",
        credentials={"access_token": "tok-very-secret-123"},
    )
    stored = bytes(Connection.objects.get(pk=connection.pk).encrypted_credentials)
    assert b"tok-very-secret-123" not in stored
    assert credentials_decrypt(stored)["access_token"] == "tok-very-secret-123"


def test_blank_secret_fields_keep_the_stored_value_on_rotation(in_workspace):
    connection = connection_create(
        name="NetSuite",
        vendor="netsuite",
        base_url="https://1234.suitetalk.api.netsuite.com",
        credentials={"account_id": "1234", "client_id": "abc", "private_key": "PEM-1"},
    )
    connection_credentials_rotate(connection=connection, credentials={"client_id": "def", "private_key": ""})
    stored = credentials_decrypt(Connection.objects.get(pk=connection.pk).encrypted_credentials)
    assert stored == {"account_id": "1234", "client_id": "def", "private_key": "PEM-1"}


def test_keys_rotate_without_losing_credentials(in_workspace, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [old_key]
    connection = connection_create(
        name="Jira",
        vendor="jira",
        base_url="https://acme.atlassian.net",
        credentials={"email": "a@b.c", "api_token": "jira-secret"},
    )
    settings.CREDENTIALS_KEYS = [new_key, old_key]
    call_command("credentials_rotate", stdout=io.StringIO(), stderr=io.StringIO())
    settings.CREDENTIALS_KEYS = [new_key]  # the old key is retired
    stored = Connection.objects.get(pk=connection.pk).encrypted_credentials
    assert credentials_decrypt(stored)["api_token"] == "jira-secret"


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://127.0.0.1:5432/"])
def test_private_destinations_are_refused_with_a_clear_message(in_workspace, url):
    connection = connection_create(name="Sneaky", vendor="kantata", base_url=url, credentials={"access_token": "x"})
    result = connection_test(connection=connection)
    assert not result.ok
    assert "Refused to connect" in result.message and "x" != result.message
    connection.refresh_from_db()
    assert connection.status == "failing" and "Refused to connect" in connection.last_error
