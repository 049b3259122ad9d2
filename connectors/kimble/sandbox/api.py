"""Kimble sandbox routes: the Salesforce platform's REST API, and Kimble's Apex REST import endpoints."""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.kimble.sandbox.org import IMPORTED, KimbleOrg
from connectors.kimble.sandbox.schema import DEMO_CREDENTIALS, IMPORT_ROWS_MAX
from connectors.salesforce_platform.org import ApiError, PlatformSandbox
from connectors.salesforce_platform.org.schema import SUPPORTED_VERSIONS
from connectors.sandbox.firm import Firm

IMPORT_ROUTE = "/services/apexrest/KimbleOne/v1.0/Import/<name>"


class KimbleSandbox(PlatformSandbox):
    vendor = "kimble"
    org_class = KimbleOrg
    credentials = DEMO_CREDENTIALS
    org: KimbleOrg

    def routes(self) -> list[Rule]:
        return [*super().routes(), Rule(IMPORT_ROUTE, endpoint="apex_import", methods=["POST"], strict_slashes=False)]

    def apex_import(self, request: Request, name: str) -> Response:
        if denied := self._authorize(request):
            return denied
        if name not in IMPORTED:
            return self._error(
                ApiError(404, "NOT_FOUND", f"Could not find a match for URL /KimbleOne/v1.0/Import/{name}")
            )
        body = request.get_json(force=True, silent=True)
        rows = body.get("Rows") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            return self._error(ApiError(400, "JSON_PARSER_ERROR", 'The import expects {"Rows": [...]}.'))
        if len(rows) > IMPORT_ROWS_MAX:
            return self._error(ApiError(400, "LIMIT_EXCEEDED", f"An import takes at most {IMPORT_ROWS_MAX} rows."))
        results = self.org.import_rows(name, rows, SUPPORTED_VERSIONS[-1])
        return self._json({"Results": results})

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        unknown = set(volumes) - {"time_entries", "expenses"}
        if unknown:
            raise ValueError(f"the kimble sandbox seeds time_entries and expenses, not {sorted(unknown)}")
        if any(count < 0 for count in volumes.values()):
            raise ValueError("volumes must be zero or more")
        return self.org.grow(time_entries=volumes.get("time_entries"), expenses=volumes.get("expenses"))


def create_app(firm: Firm | None = None) -> KimbleSandbox:
    return KimbleSandbox(firm)
