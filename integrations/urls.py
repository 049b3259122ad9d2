"""The client workspace's screens, mounted under /c/<slug>/ (portal.urls_workspace)."""

from django.urls import path

from integrations.views import alerts, bulk, connections, dashboards, exceptions, flows, mappings, people

urlpatterns = [
    path("", people.workspace_home, name="workspace_home"),
    # Exception queue
    path("exceptions/", exceptions.exception_queue, name="exception_queue"),
    path("exceptions/counters", exceptions.exception_counters, name="exception_counters"),
    path("exceptions/export.csv", exceptions.exception_export, name="exception_export"),
    path("exceptions/bulk", exceptions.exception_bulk, name="exception_bulk"),
    path("exceptions/bulk/progress", bulk.exception_bulk_progress, name="exception_bulk_progress"),
    path("exceptions/<int:pk>/", exceptions.exception_detail, name="exception_detail"),
    path("exceptions/<int:pk>/retry", exceptions.exception_retry_view, name="exception_retry"),
    path("exceptions/<int:pk>/edit", exceptions.exception_edit, name="exception_edit"),
    path("exceptions/<int:pk>/map", exceptions.exception_map, name="exception_map"),
    path("exceptions/<int:pk>/ignore", exceptions.exception_ignore_view, name="exception_ignore"),
    path("exceptions/<int:pk>/assign", exceptions.exception_assign_view, name="exception_assign"),
    path("exceptions/<int:pk>/comment", exceptions.exception_comment_view, name="exception_comment"),
    # Connections
    path("connections/", connections.connection_list, name="connection_list"),
    path("connections/new/<slug:vendor>", connections.connection_new, name="connection_new"),
    path("connections/<int:pk>/", connections.connection_detail, name="connection_detail"),
    path("connections/<int:pk>/test", connections.connection_test_view, name="connection_test"),
    path("connections/<int:pk>/rotate", connections.connection_rotate, name="connection_rotate"),
    path("connections/<int:pk>/rename", connections.connection_rename_view, name="connection_rename"),
    path("connections/<int:pk>/delete", connections.connection_delete_view, name="connection_delete"),
    # Flows, runs, mappings, value maps
    path("flows/", flows.flow_list, name="flow_list"),
    path("flows/install/<slug:key>", flows.template_install_view, name="template_install"),
    path("flows/new", flows.flow_build, name="flow_build"),
    path("flows/<int:pk>/", flows.flow_detail, name="flow_detail"),
    path("flows/<int:pk>/run", flows.flow_run, name="flow_run"),
    path("flows/<int:pk>/enabled", flows.flow_enabled, name="flow_enabled"),
    path("flows/<int:pk>/schedule", flows.flow_schedule, name="flow_schedule"),
    path("flows/<int:pk>/history", flows.run_history, name="run_history"),
    path("flows/<int:pk>/steps/add", flows.flow_step_add_view, name="flow_step_add"),
    path("runs/<int:pk>/", flows.run_progress, name="run_progress"),
    path("mappings/<int:pk>/", mappings.mapping_editor, name="mapping_editor"),
    path("mappings/<int:pk>/sample", mappings.mapping_sample_refresh, name="mapping_sample_refresh"),
    path("mappings/<int:pk>/preview", mappings.mapping_preview, name="mapping_preview"),
    path("mappings/<int:pk>/preview/draft", mappings.mapping_preview_draft, name="mapping_preview_draft"),
    path("mappings/<int:pk>/rules/new", mappings.mapping_rule_form, {"id": None}, name="mapping_rule_new"),
    path("mappings/<int:pk>/rules/add", mappings.mapping_rule_save, {"id": None}, name="mapping_rule_add"),
    path("mappings/<int:pk>/rules/<int:id>/", mappings.mapping_rule_row, name="mapping_rule_row"),
    path("mappings/<int:pk>/rules/<int:id>/edit", mappings.mapping_rule_form, name="mapping_rule_edit"),
    path("mappings/<int:pk>/rules/<int:id>/save", mappings.mapping_rule_save, name="mapping_rule_save"),
    path("mappings/<int:pk>/rules/<int:id>/delete", mappings.mapping_rule_delete, name="mapping_rule_delete"),
    path("value-maps/", mappings.value_map_list, name="value_map_list"),
    path("value-maps/<int:pk>/", mappings.value_map_detail, name="value_map_detail"),
    path("value-maps/<int:pk>/entries", mappings.value_map_entry_add, name="value_map_entry_add"),
    path("value-maps/<int:pk>/entries/<int:id>/delete", mappings.value_map_entry_delete, name="value_map_entry_delete"),
    # Dashboards
    path("dashboards/", dashboards.exceptions_dashboard, name="dashboard_exceptions"),
    path("dashboards/utilization", dashboards.utilization_dashboard, name="dashboard_utilization"),
    path("dashboards/margin", dashboards.margin_dashboard, name="dashboard_margin"),
    path("dashboards/sync-health", dashboards.sync_health_dashboard, name="dashboard_sync"),
    # People and the audit log
    path("users/", people.workspace_users, name="workspace_users"),
    path("users/invite", people.user_invite_view, name="workspace_user_invite"),
    path("users/<int:pk>/role", people.user_role, name="workspace_user_role"),
    path("users/<int:pk>/remove", people.user_remove, name="workspace_user_remove"),
    path("audit/", people.audit_log, name="audit_log"),
    # Alerts
    path("alerts/", alerts.alert_list, name="alert_list"),
    path("alerts/add", alerts.alert_recipient_add_view, name="alert_recipient_add"),
    path("alerts/<int:pk>/save", alerts.alert_recipient_save, name="alert_recipient_save"),
    path("alerts/<int:pk>/remove", alerts.alert_recipient_remove_view, name="alert_recipient_remove"),
]
