"""The words pages use for error codes, vendors and kinds of system."""

from __future__ import annotations

from connectors.registry import CONNECTORS
from integrations.models import SyncException

CATEGORY_LABELS = {"crm": "CRM", "erp": "ERP", "psa": "PSA", "hr": "HR", "ticketing": "Ticketing"}


def error_label(code: str) -> str:
    """SyncException.ErrorCode's label; a code it does not know (a vendor's, kept as it came) in plain words."""
    if code in SyncException.ErrorCode.values:
        return SyncException.ErrorCode(code).label
    return code.replace("_", " ").capitalize()


def vendor_label(vendor: str) -> str:
    cls = CONNECTORS.get(vendor)
    return cls.label if cls else vendor.title()
