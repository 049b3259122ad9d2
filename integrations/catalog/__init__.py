"""The packaged flows a client can install, as data: connections they need, value maps, flows, rules.

`specs` says what a template is made of; `roles` what a template needs of each role's vendor; `crm`, `erp`,
`psa`, `hr` and `ticketing` how each vendor provides it (its profile); `templates` the packaged templates
built from those profiles, and the lookup of a vendor's reference flows.
"""

from integrations.catalog.crm import CRM
from integrations.catalog.erp import ERP
from integrations.catalog.hr import HR
from integrations.catalog.psa import PSA
from integrations.catalog.specs import FlowSpec, StepSpec, Template
from integrations.catalog.templates import (
    PARTNER_TEMPLATE_PREFIX,
    PROFILES,
    PSA_PROJECTS,
    TEMPLATES,
    PackagedTemplate,
    reference_spec,
)
from integrations.catalog.ticketing import TICKETING

__all__ = [
    "CRM",
    "ERP",
    "HR",
    "PARTNER_TEMPLATE_PREFIX",
    "PROFILES",
    "PSA",
    "PSA_PROJECTS",
    "TEMPLATES",
    "TICKETING",
    "FlowSpec",
    "PackagedTemplate",
    "StepSpec",
    "Template",
    "reference_spec",
]
