from django.core.management.base import BaseCommand

from integrations.demo import demo_integrations
from tenants.demo import DEMO_PASSWORD, USERS, demo_commercials, demo_seed
from tenants.demo_accounts import demo_accounts_prepare


class Command(BaseCommand):
    help = "Create the demo platform: Northwind Advisory and Summit Cloud Partners, their clients and users."

    def add_arguments(self, parser):
        parser.add_argument("--first-runs", action="store_true", help="Queue a first run of each packaged flow.")

    def handle(self, *args, **options):
        seeded = demo_seed(stdout=self.stdout)
        demo_accounts_prepare()
        demo_commercials(seeded["clients"])
        demo_integrations(stdout=self.stdout, first_runs=options["first_runs"])
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {len(USERS)} users, password {DEMO_PASSWORD}"))
