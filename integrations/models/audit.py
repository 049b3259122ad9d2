from django.db import models

from portal.models import AuditEntry


class AuditEvent(AuditEntry):
    """Who did what, when, with the values before and after. Written with the change, in one transaction."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Users live in the public schema; keep the id (and AuditEntry the email) so the row reads well if the user goes.
    actor_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=80, db_index=True)
