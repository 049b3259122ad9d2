from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import lookups  # noqa: F401  (registers `__any` on every field)
        from integrations.services.audit import workspace_change_record
        from integrations.services.flows import flows_schedules_restore
        from tenants.signals import client_resumed, workspace_changed

        # tenants sits below integrations and never imports it: it signals, integrations writes.
        workspace_changed.connect(workspace_change_record, dispatch_uid="integrations.workspace_change_record")
        client_resumed.connect(flows_schedules_restore, dispatch_uid="integrations.flows_schedules_restore")
