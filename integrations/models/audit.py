from django.db import models


class AuditEvent(models.Model):
    """Who did what, when, with the values before and after. Written with the change, in one transaction."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Users live in the public schema; keep the id and email so the row reads well even if the user goes.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_email = models.EmailField(blank=True)
    action = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=80, blank=True)
    target_id = models.CharField(max_length=120, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.action}"
