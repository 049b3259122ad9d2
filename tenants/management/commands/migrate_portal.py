from django.core.management.base import BaseCommand

from tenants.provisioning import portal_migrate


class Command(BaseCommand):
    help = "Migrate the public schema, the client template schema and every client schema."

    def add_arguments(self, parser):
        parser.add_argument("--parallel", action="store_true", help="Migrate client schemas in parallel processes.")

    def handle(self, *args, **options):
        portal_migrate(verbosity=max(0, options["verbosity"] - 1), parallel=options["parallel"])
        self.stdout.write(self.style.SUCCESS("Schemas are up to date."))
