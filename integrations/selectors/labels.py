"""The words pages use for error codes, vendors and kinds of system."""

from __future__ import annotations

from connectors.registry import CONNECTORS

ERROR_LABELS = {
    "PROJECT_NOT_IN_TARGET": "Project code not found",
    "PROJECT_NOT_FOUND": "Project code not found",
    "VALUE_NOT_MAPPED": "Value not mapped",
    "REQUIRED_MISSING": "Required field missing",
    "MISSING_COST_RATE": "No cost rate",
    "AWAITING_FIRST_SYNC": "Waiting for a first sync",
    "FIELD_CONFLICT": "Field owned by another system",
    "TARGET_UNAVAILABLE": "Target system unavailable",
    "TARGET_REJECTED": "Rejected by the target",
    "MALFORMED_RECORD": "Unreadable record",
    "BAD_DATE": "Not a date",
    "BAD_NUMBER": "Not a number",
    "BAD_CURRENCY": "Not a currency",
}

CATEGORY_LABELS = {"crm": "CRM", "erp": "ERP", "psa": "PSA", "hr": "HR", "ticketing": "Ticketing"}


def error_label(code: str) -> str:
    return ERROR_LABELS.get(code) or code.replace("_", " ").capitalize()


def vendor_label(vendor: str) -> str:
    cls = CONNECTORS.get(vendor)
    return cls.label if cls else vendor.title()
