from django.core.management.base import BaseCommand

from tenants.demo import DEMO_PASSWORD, USERS, demo_seed


class Command(BaseCommand):
    help = "Create the demo platform: Northwind Advisory and Summit Cloud Partners, their clients and users."

    def handle(self, *args, **options):
        demo_seed(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {len(USERS)} users, password {DEMO_PASSWORD}"))
