from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from integrations.crypto import credentials_reencrypt
from integrations.models import Connection
from tenants.models import Client


class Command(BaseCommand):
    help = "Re-encrypt every stored connection credential with the first key of CREDENTIALS_KEYS."

    def handle(self, *args, **options):
        total = 0
        for client in Client.objects.all():
            with tenant_context(client):
                for connection in Connection.objects.exclude(encrypted_credentials=b""):
                    connection.encrypted_credentials = credentials_reencrypt(connection.encrypted_credentials)
                    connection.save(update_fields=["encrypted_credentials"])
                    total += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the credentials of {total} connection(s)."))
