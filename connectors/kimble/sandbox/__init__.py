"""Kimble sandbox: the Salesforce platform's REST emulator with the `KimbleOne__` package's objects and imports.

Seeded from the shared Firm as a PSA holds it: every customer as an Account, every person as a resource (with a
cost rate, a few without on purpose), every project as an engagement (delivery group, its code in
`KimbleOne__Reference__c`, the PSA-only follow-on phases too) with its delivery element, an activity assignment
for each person on each project they booked time on (with the rates the project bills and costs their time at),
one time period per business day, and the firm's time entries and expense items, computed from their index so
100,000 of them cost no memory. Statuses are lookups to reference data (`KimbleOne__Enum__c`). Writes come
through the Apex REST imports (`/services/apexrest/KimbleOne/v1.0/Import/ResourceImport`, `.../DeliveryGroupImport`)
with dd/MM/yyyy dates.

`schema` holds the objects and fields, `org` the seeded records, rules and imports, `api` the routes.
"""

from connectors.kimble.sandbox.api import KimbleSandbox, create_app
from connectors.kimble.sandbox.schema import DEMO_CREDENTIALS

__all__ = ["DEMO_CREDENTIALS", "KimbleSandbox", "create_app"]
