"""Reads of a client schema for pages, dashboards and the partner's roll-ups, one module a subject.

Everything here stays fast at a million exceptions and a million time entries in one schema:
lists page by keyset on indexed columns, counts stop at a cap (then the planner estimates),
dashboards read index-only over a bounded period (see docs/benchmarks.md). Nothing here queues
work: the dashboards' cache and its refresh are integrations.dashboard_cache.

The names below are the ones views and the API read as `selectors.<name>`.
"""

from integrations.selectors.alerts import alert_flows, alert_recipients, flow_alert_recipients
from integrations.selectors.audit import audit_action_groups, audit_events
from integrations.selectors.counting import (
    BoundedCount,
    bounded_count,
    bounded_counts,
    distinct_values,
    open_exceptions_by,
)
from integrations.selectors.dashboards import (
    exceptions_dashboard,
    margin_dashboard,
    sync_health_dashboard,
    utilization_dashboard,
)
from integrations.selectors.labels import CATEGORY_LABELS, error_label, vendor_label
from integrations.selectors.queue import (
    LIVE_EXCEPTION,
    QUEUE_STATUSES,
    QueueQuery,
    exception_get,
    exception_history,
    exception_queue,
    exception_waiting,
    exception_waiting_on,
    exceptions_filtered,
    exceptions_fixed_by,
    map_value_suggestions,
    queue_choices,
    queue_choices_forget,
    queue_counters,
    record_fields,
)
from integrations.selectors.workspace import (
    RECONCILIATION_PAGE,
    connection_settings,
    connections_overview,
    field_owners,
    flow_outcomes,
    flow_runs,
    flows_counted_by_plan,
    flows_overview,
    reconciliation_rows,
    run_outcomes,
    workspace_overview,
)

__all__ = [
    "CATEGORY_LABELS",
    "LIVE_EXCEPTION",
    "QUEUE_STATUSES",
    "RECONCILIATION_PAGE",
    "BoundedCount",
    "QueueQuery",
    "alert_flows",
    "alert_recipients",
    "audit_action_groups",
    "audit_events",
    "bounded_count",
    "bounded_counts",
    "connection_settings",
    "connections_overview",
    "distinct_values",
    "error_label",
    "exception_get",
    "exception_history",
    "exception_queue",
    "exception_waiting",
    "exception_waiting_on",
    "exceptions_dashboard",
    "exceptions_filtered",
    "exceptions_fixed_by",
    "field_owners",
    "flow_alert_recipients",
    "flow_outcomes",
    "flow_runs",
    "flows_counted_by_plan",
    "flows_overview",
    "map_value_suggestions",
    "margin_dashboard",
    "open_exceptions_by",
    "queue_choices",
    "queue_choices_forget",
    "queue_counters",
    "reconciliation_rows",
    "record_fields",
    "run_outcomes",
    "sync_health_dashboard",
    "utilization_dashboard",
    "vendor_label",
    "workspace_overview",
]
