from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from integrations.models import Connection
from portal.crypto import credentials_reencrypt
from tenants.models import Client, SsoConnection


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored connection credential, and every single sign-on secret and key, with the first "
        "key of CREDENTIALS_KEYS."
    )

    def handle(self, *args, **options):
        total = unreadable = 0
        for client in Client.objects.all():
            with tenant_context(client):
                for connection in Connection.objects.exclude(encrypted_credentials=b""):
                    try:
                        connection.encrypted_credentials = credentials_reencrypt(connection.encrypted_credentials)
                    except InvalidToken:
                        # Encrypted with a key no longer configured: left as is, and said.
                        unreadable += 1
                        self.stderr.write(f"{client.name}: “{connection.name}” cannot be decrypted with any key")
                        continue
                    connection.save(update_fields=["encrypted_credentials"])
                    total += 1
        # Single sign-on's OIDC client secrets and SAML signing keys live in the public schema.
        for sso in SsoConnection.objects.exclude(encrypted_secret=b""):
            try:
                sso.encrypted_secret = credentials_reencrypt(bytes(sso.encrypted_secret))
            except InvalidToken:
                unreadable += 1
                self.stderr.write(f"Single sign-on “{sso.name}” cannot be decrypted with any key")
                continue
            sso.save(update_fields=["encrypted_secret"])
            total += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the credentials of {total} connection(s)."))
        if unreadable:
            self.stdout.write(self.style.WARNING(f"{unreadable} connection(s) need their credentials entered again."))
