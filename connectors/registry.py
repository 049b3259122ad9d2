"""Which connectors exist: the Connector class for each vendor and the port of each vendor's local sandbox."""

from __future__ import annotations

import importlib
import inspect
import logging

from connectors.base import Connector
from connectors.sandbox.server import SANDBOX_PORTS

logger = logging.getLogger("connectors")

VENDORS = (
    "salesforce",
    "hubspot",
    "dynamics365",
    "netsuite",
    "businesscentral",
    "intacct",
    "kantata",
    "certinia",
    "bamboohr",
    "workday",
    "adp",
    "jira",
    "acumatica",
    "kimble",
    "float",
    "asana",
    "monday",
    "servicenow",
)

__all__ = ["CONNECTORS", "SANDBOX_PORTS", "VENDORS", "get_connector_class"]


def _load(vendor: str) -> type[Connector] | None:
    """The Connector subclass in connectors.<vendor>.client whose `vendor` matches, or None if not built yet."""
    module_name = f"connectors.{vendor}.client"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing vendor package is tolerated; a vendor module with a broken import must fail loudly.
        if exc.name not in (f"connectors.{vendor}", module_name):
            raise
        logger.info("No %s connector yet (%s is missing)", vendor, module_name)
        return None
    for _name, obj in inspect.getmembers(module, inspect.isclass):
        if issubclass(obj, Connector) and not inspect.isabstract(obj) and getattr(obj, "vendor", None) == vendor:
            return obj
    logger.warning("%s defines no Connector subclass with vendor = %r", module_name, vendor)
    return None


CONNECTORS: dict[str, type[Connector]] = {vendor: cls for vendor in VENDORS if (cls := _load(vendor)) is not None}


def get_connector_class(vendor: str) -> type[Connector]:
    """The Connector class for `vendor`; KeyError with the known vendors when there is none."""
    try:
        return CONNECTORS[vendor]
    except KeyError:
        raise KeyError(f"No connector for {vendor!r}; known: {', '.join(sorted(CONNECTORS))}") from None
