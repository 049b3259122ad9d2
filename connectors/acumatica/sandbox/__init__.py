"""Acumatica sandbox: a local emulator of the contract-based REST API subset the connector uses.

Cookie sign-in at `/entity/auth/login` (name, password, tenant, branch) that holds one of the licence's API seats
until `/entity/auth/logout` or an idle time-out; a sign-in past the seats is refused with "API Login Limit", as a
trial licence (two seats) does. The versioned endpoint `/entity/Default/{version}/{Entity}` for Customer, Project,
Employee and Invoice (with its Details): every field wrapped as `{"value": ...}`, GET lists with `$filter`
(`LastModifiedDateTime ge datetimeoffset'...'`, `eq`, `and`, `or`), `$top`, `$skip`, `$expand` and `$select` in
key order, GET by key or id, and PUT that inserts or updates by key fields (a detail line with `"delete": true`
is removed) and answers 422 with an `error` on each refused field. Seeded from the firm as its ERP history says:
every customer, the projects set up before the last deals were won, every employee but the latest hires, and
the invoices issued before the firm kept its time in the PSA.

`schema` holds the vocabulary, `state` the tenant's records and PUT, `api` the routes, seats and refusals.
"""

from connectors.acumatica.sandbox.api import AcumaticaSandbox, create_app
from connectors.acumatica.sandbox.schema import DEMO_CREDENTIALS

__all__ = ["DEMO_CREDENTIALS", "AcumaticaSandbox", "create_app"]
