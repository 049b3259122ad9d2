"""Models of a client schema: connections, the canonical model, flows, runs, exceptions, audit."""

from integrations.models.audit import AuditEvent
from integrations.models.canonical import (
    Contract,
    Customer,
    Expense,
    ExternalRef,
    FieldOwnership,
    Invoice,
    InvoiceLine,
    Opportunity,
    Project,
    Rate,
    RateCard,
    Resource,
    TimeEntry,
)
from integrations.models.connections import Connection, Environment
from integrations.models.flows import Flow, FlowStep, Mapping, MappingRule, ValueMap, ValueMapEntry
from integrations.models.runs import (
    BulkAction,
    NotificationRecipient,
    RunRecord,
    SyncException,
    SyncExceptionComment,
    SyncRun,
    WebhookDelivery,
)

__all__ = [
    "AuditEvent",
    "BulkAction",
    "Connection",
    "Contract",
    "Customer",
    "Environment",
    "Expense",
    "ExternalRef",
    "FieldOwnership",
    "Flow",
    "FlowStep",
    "Invoice",
    "InvoiceLine",
    "Mapping",
    "MappingRule",
    "NotificationRecipient",
    "Opportunity",
    "Project",
    "Rate",
    "RateCard",
    "Resource",
    "RunRecord",
    "SyncException",
    "SyncExceptionComment",
    "SyncRun",
    "TimeEntry",
    "ValueMap",
    "ValueMapEntry",
    "WebhookDelivery",
]
