"""NetSuite sandbox: a local WSGI emulator of the SuiteTalk REST subset the connector uses.

OAuth 2.0 client credentials (a JWT assertion verified against the uploaded certificate), record/v1 create,
get, update, delete and upsert by `eid:` for customer, job, employee and invoice with NetSuite's referential
checks and error bodies, the X-NetSuite-idempotency-key, SuiteQL (a small SELECT engine) with limit/offset
pages, and the per-account concurrency limit. Seeded from the shared Firm; its seeded external ids are the
firm's own keys: customers "C5001".., projects "PRJ-101".., employees "E1001"...

`schema` holds the vocabulary, `state` the records, `query` SuiteQL, `render` the JSON, `api` the routes.
"""

from connectors.netsuite.sandbox.api import NetSuiteSandbox, create_app
from connectors.netsuite.sandbox.schema import (
    ACCOUNT_CONCURRENCY,
    DEMO_CERTIFICATE,
    DEMO_CREDENTIALS,
    DEMO_PRIVATE_KEY,
    TERMS,
)

__all__ = [
    "ACCOUNT_CONCURRENCY",
    "DEMO_CERTIFICATE",
    "DEMO_CREDENTIALS",
    "DEMO_PRIVATE_KEY",
    "TERMS",
    "NetSuiteSandbox",
    "create_app",
]
