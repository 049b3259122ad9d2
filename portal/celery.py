"""The one Celery app. Tasks run in the schema of the tenant that queued them.

tenant-schemas-celery stamps the current schema into each message's headers when a task is
queued and switches the worker's connection to it before the task runs. Beat schedules name
their tenant with a `_schema_name` header on the PeriodicTask (see tenants.services).
"""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = CeleryApp("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
