"""HubSpot sandbox: a local WSGI emulator of the CRM v3 objects API for companies and deals.

List (limit 100, `after` cursor), search (filterGroups, one sort, 200 a page, 10,000 results at most), batch
create/update/upsert/read (100 inputs, 207 on partial failure), v4 association reads, private-app Bearer auth,
the rate limits with their 429 body and X-HubSpot-RateLimit-* headers, and deal-stage webhooks signed with
X-HubSpot-Signature-v3. Seeded from the shared Firm. Assumptions are listed in client.py's "(unverified)" block.

`schema` holds the vocabulary, `state` the portal's records, `objects` the CRM object endpoints, `api` the rest.
"""

from connectors.hubspot.sandbox.api import HubSpotSandbox, create_app
from connectors.hubspot.sandbox.schema import DEMO_CREDENTIALS, PORTAL_ID, WEBHOOK_SECRET
from connectors.hubspot.sandbox.state import HubSpotPortal

__all__ = ["DEMO_CREDENTIALS", "PORTAL_ID", "WEBHOOK_SECRET", "HubSpotPortal", "HubSpotSandbox", "create_app"]
