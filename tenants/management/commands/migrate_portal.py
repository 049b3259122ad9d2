import time

from django.core.management.base import BaseCommand, CommandError

from tenants.provisioning import SchemasBehind, portal_migrate


class Command(BaseCommand):
    help = "Migrate the public schema, the client template schema and every client schema."

    def handle(self, *args, **options):
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if options["verbosity"] and (done == total or time.monotonic() - last[0] > 1):
                last[0] = time.monotonic()
                self.stdout.write(f"  client schemas upgraded: {done} of {total}")

        try:
            upgrade = portal_migrate(verbosity=max(0, options["verbosity"] - 1), on_progress=progress)
        except SchemasBehind as error:
            raise CommandError(str(error)) from error
        if upgrade.count:
            self.stdout.write(f"{upgrade.count} client schema(s) upgraded in {upgrade.seconds:.1f} s.")
        self.stdout.write(self.style.SUCCESS("Schemas are up to date."))
