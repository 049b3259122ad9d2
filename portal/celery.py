"""The one Celery app. Tasks run in the schema of the tenant that queued them.

tenant-schemas-celery stamps the current schema into each message's headers when a task is
queued and switches the worker's connection to it before the task runs. Beat schedules name
their tenant with a `_schema_name` header on the PeriodicTask (see tenants.services).
"""

import os

from celery.signals import worker_ready
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = CeleryApp("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def recover_interrupted_runs(**_):
    """A worker that starts after a crash picks up the runs the dead one left behind."""
    app.send_task("portal.tasks.runs_recover")
