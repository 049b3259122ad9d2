"""BambooHR sandbox: a local WSGI emulator of the API subset the connector uses.

Basic auth with the API key as user name, the employee directory, single employees (`employees/0` is the key's
owner), `employees/changed?since=`, custom reports (JSON) with a lastChanged filter, and employee add/update so
a test can make changes. Errors are bare statuses with X-BambooHR-Error-Message; throttling is 503 + Retry-After
(set `throttle_status = 429` for the newer behaviour). The firm's 200 people are the employees; some are
terminated, and on purpose a few have no department or no work email (the firm's `hr_gaps`).
"""

from __future__ import annotations

import base64
import hmac
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.bamboohr.client import COST_RATE_FIELD, EMPTY_DATE, ERROR_HEADER
from connectors.base import parse_utc_datetime
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm

COMPANY = "haldenrowe"
DEMO_CREDENTIALS = {"company_domain": COMPANY, "api_key": "bhr-demo-4f7d2c9e1a6b8035e2d4c7f9a1b3d5e7"}
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)  # employees were last changed two a minute from here

# id, type, name of every field the sandbox knows (GET meta/fields and report headers)
FIELDS = {
    "id": ("int", "Employee #"),
    "employeeNumber": ("text", "Employee #"),
    "firstName": ("text", "First Name"),
    "lastName": ("text", "Last Name"),
    "preferredName": ("text", "Preferred Name"),
    "displayName": ("text", "Display name"),
    "workEmail": ("email", "Work Email"),
    "workPhone": ("text", "Work Phone"),
    "department": ("list", "Department"),
    "division": ("list", "Division"),
    "jobTitle": ("list", "Job Title"),
    "location": ("list", "Location"),
    "status": ("status", "Status"),
    "employmentHistoryStatus": ("list", "Employment Status"),
    "hireDate": ("date", "Hire Date"),
    "terminationDate": ("date", "Termination Date"),
    "payRate": ("currency", "Pay rate"),
    "payType": ("pay_type", "Pay type"),
    "payPer": ("list", "Pay per"),
    "supervisor": ("text", "Supervisor"),
    "supervisorEId": ("int", "Supervisor EID"),
    "supervisorEmail": ("email", "Supervisor email"),
    COST_RATE_FIELD: ("currency", "Cost Rate"),
    "lastChanged": ("timestamp", "Last changed"),
}
DIRECTORY_FIELDS = (
    "displayName",
    "firstName",
    "lastName",
    "preferredName",
    "jobTitle",
    "workPhone",
    "workEmail",
    "department",
    "location",
    "division",
)
WRITABLE = frozenset(FIELDS) - {"id", "lastChanged", "displayName", "supervisor", "supervisorEmail"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class BambooHRSandbox(SandboxApp):
    vendor = "bamboohr"

    def __init__(self, firm: Firm | None = None):
        self.throttle_status = 503
        super().__init__(firm)

    def routes(self) -> list[Rule]:
        base = "/api/gateway.php/<company>/v1"
        return [
            Rule(f"{base}/employees/directory", endpoint="directory", methods=["GET"], strict_slashes=False),
            Rule(f"{base}/employees/changed", endpoint="changed", methods=["GET"], strict_slashes=False),
            Rule(f"{base}/employees", endpoint="add_employee", methods=["POST"], strict_slashes=False),
            Rule(f"{base}/employees/<employee_id>", endpoint="employee", methods=["GET", "POST"], strict_slashes=False),
            Rule(f"{base}/reports/custom", endpoint="custom_report", methods=["POST"], strict_slashes=False),
            Rule(f"{base}/meta/fields", endpoint="meta_fields", methods=["GET"], strict_slashes=False),
        ]

    # -- state ---------------------------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.employees: dict[int, dict[str, Any]] = {}
        self.created_at: dict[int, datetime] = {}
        self.deleted: dict[int, datetime] = {}
        people = self.firm.people()
        ids_by_email = {p["work_email"]: p["id"] for p in people}
        gaps = self.firm.hr_gaps()
        for person in people:
            pid = person["id"]
            supervisor_id = ids_by_email.get(person["supervisor_email"] or "")
            no_department = gaps.get(pid) == "department"
            no_email = gaps.get(pid) == "work_email"
            self.employees[pid] = {
                "employeeNumber": person["employee_number"],
                "firstName": person["first_name"],
                "lastName": person["last_name"],
                "preferredName": None,
                "workEmail": None if no_email else person["work_email"],
                "workPhone": f"+1 555 02{pid:03d}",
                "department": None if no_department else person["department"],
                "division": person["practice"],
                "jobTitle": person["job_title"],
                "location": person["location"],
                "status": person["status"],
                "employmentHistoryStatus": "Terminated" if person["termination_date"] else "Full-Time",
                "hireDate": person["hire_date"],
                "terminationDate": person["termination_date"],
                "payRate": f"{person['pay_rate']} {person['currency']}",
                "payType": "Salary",
                "payPer": "Year",
                "supervisorEId": str(supervisor_id) if supervisor_id else None,
                COST_RATE_FIELD: f"{person['cost_rate']} {person['currency']}" if person["cost_rate"] else None,
                "lastChanged": SEED_EPOCH + timedelta(minutes=(pid - 1) // 2),
            }
            self.created_at[pid] = SEED_EPOCH - timedelta(days=1)
        # The API key belongs to the first person of the People team (an HR administrator).
        self.api_user_id = next((p["id"] for p in people if p["department"] == "People"), people[0]["id"])

    def _view(self, employee_id: int) -> dict[str, Any]:
        """The employee's fields as BambooHR renders them (strings, derived fields filled in)."""
        record = self.employees[employee_id]
        supervisor_id = int(record["supervisorEId"]) if record.get("supervisorEId") else None
        supervisor = self.employees.get(supervisor_id) if supervisor_id else None
        view: dict[str, Any] = {"id": str(employee_id)}
        for field in FIELDS:
            if field == "id":
                continue
            if field == "displayName":
                view[field] = f"{record.get('preferredName') or record['firstName']} {record['lastName']}"
            elif field == "supervisor":
                view[field] = f"{supervisor['lastName']}, {supervisor['firstName']}" if supervisor else None
            elif field == "supervisorEmail":
                view[field] = supervisor.get("workEmail") if supervisor else None
            elif field == "lastChanged":
                view[field] = _iso(record["lastChanged"])
            elif FIELDS[field][0] == "date":
                view[field] = record.get(field) or EMPTY_DATE
            else:
                view[field] = record.get(field)
        return view

    # -- vendor hooks ----------------------------------------------------------------------------------------------

    def _bare(self, status: int, message: str | None = None, headers: dict[str, str] | None = None) -> Response:
        all_headers = dict(headers or {})
        if message:
            all_headers[ERROR_HEADER] = message
        return Response(b"", status=status, headers=all_headers)

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        return self._bare(
            self.throttle_status,
            "Too many requests. Please retry later.",
            {"Retry-After": str(math.ceil(retry_after))},
        )

    def server_error_response(self, request: Request) -> Response:
        return self._bare(500, "Internal server error (injected by the sandbox)")

    def not_found_response(self, request: Request) -> Response:
        return self._bare(404, f"{request.path} was not found")

    def method_not_allowed_response(self, request: Request) -> Response:
        return self._bare(405, f"{request.method} is not allowed on {request.path}")

    def _guard(self, request: Request, company: str) -> Response | None:
        """Company, API key (Basic user name; any password) and Accept: the checks every call goes through."""
        if company != COMPANY:
            return self._bare(404, f"Company '{company}' not found")
        header = request.headers.get("Authorization", "")
        user = ""
        if header.startswith("Basic "):
            try:
                user = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                user = ""
        if not user or not hmac.compare_digest(user, DEMO_CREDENTIALS["api_key"]):
            return self._bare(401, None, {"WWW-Authenticate": 'Basic realm="BambooHR"'})
        if "application/json" not in request.headers.get("Accept", ""):
            # The real API answers XML by default; this sandbox speaks JSON only.
            return self._bare(406, "This sandbox answers JSON only: send Accept: application/json")
        return None

    def _corrupt(self, rows: list[dict[str, Any]]) -> None:
        for position in self.malformed_positions(len(rows)):
            if position % 2 == 0:
                rows[position].pop("id", None)
            else:
                rows[position]["hireDate"] = "31/02/2019"

    # -- endpoints -----------------------------------------------------------------------------------------------

    def directory(self, request: Request, company: str) -> Response:
        if (refused := self._guard(request, company)) is not None:
            return refused
        with self.lock:
            rows = []
            for employee_id, record in self.employees.items():
                if record["status"] != "Active":
                    continue  # the directory lists current employees only
                view = self._view(employee_id)
                rows.append({"id": view["id"], **{f: view.get(f) for f in DIRECTORY_FIELDS}})
        self._corrupt(rows)
        fields = [{"id": f, "type": FIELDS[f][0], "name": FIELDS[f][1]} for f in DIRECTORY_FIELDS]
        return json_response({"fields": fields, "employees": rows})

    def employee(self, request: Request, company: str, employee_id: str) -> Response:
        if (refused := self._guard(request, company)) is not None:
            return refused
        if not employee_id.isdigit():
            return self._bare(400, "Invalid employee id")
        number = int(employee_id) or self.api_user_id
        with self.lock:
            if number not in self.employees:
                return self._bare(404, f"Employee {employee_id} not found")
            if request.method == "POST":
                return self._update(request, number)
            view = self._view(number)
        wanted = [f.strip() for f in request.args.get("fields", "firstName,lastName").split(",") if f.strip()]
        return json_response({"id": view["id"], **{f: view.get(f) for f in wanted}})

    def _update(self, request: Request, number: int) -> Response:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return self._bare(400, "The body must be a JSON object of fields")
        unknown = sorted(set(body) - WRITABLE)
        if unknown:
            return self._bare(400, f"Invalid field(s): {', '.join(unknown)}")
        self.employees[number].update(body)
        self.employees[number]["lastChanged"] = _now()
        return Response(b"", status=200)

    def add_employee(self, request: Request, company: str) -> Response:
        if (refused := self._guard(request, company)) is not None:
            return refused
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not body.get("firstName") or not body.get("lastName"):
            return self._bare(400, "firstName and lastName are required")
        unknown = sorted(set(body) - WRITABLE)
        if unknown:
            return self._bare(400, f"Invalid field(s): {', '.join(unknown)}")
        with self.lock:
            number = max([*self.employees, *self.deleted], default=0) + 1
            now = _now()
            self.employees[number] = {
                **{f: None for f in WRITABLE},
                "status": "Active",
                **body,
                "lastChanged": now,
            }
            self.created_at[number] = now
        location = f"{request.host_url.rstrip('/')}/api/gateway.php/{company}/v1/employees/{number}"
        return Response(b"", status=201, headers={"Location": location})

    def changed(self, request: Request, company: str) -> Response:
        if (refused := self._guard(request, company)) is not None:
            return refused
        since = parse_utc_datetime(request.args.get("since", ""))
        if since is None or not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", request.args.get("since", "")):
            return self._bare(400, "The since parameter must be an ISO 8601 timestamp")
        wanted = (request.args.get("type") or "").lower()
        changes: dict[str, dict[str, str]] = {}
        with self.lock:
            for number, record in self.employees.items():
                if record["lastChanged"] >= since:
                    action = "Inserted" if self.created_at.get(number, since) >= since else "Updated"
                    changes[str(number)] = {
                        "id": str(number),
                        "action": action,
                        "lastChanged": _iso(record["lastChanged"]),
                    }
            for number, moment in self.deleted.items():
                if moment >= since:
                    changes[str(number)] = {"id": str(number), "action": "Deleted", "lastChanged": _iso(moment)}
        if wanted:
            changes = {k: v for k, v in changes.items() if v["action"].lower() == wanted}
        latest = max((v["lastChanged"] for v in changes.values()), default=_iso(since))
        return json_response({"latest": latest, "employees": changes})

    def custom_report(self, request: Request, company: str) -> Response:
        if (refused := self._guard(request, company)) is not None:
            return refused
        if request.args.get("format", "").upper() != "JSON":
            return self._bare(400, "This sandbox produces custom reports with format=JSON only")
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("fields"), list):
            return self._bare(400, "The report needs a list of fields")
        fields = [str(f) for f in body["fields"]]
        since = None
        last_changed = (
            ((body.get("filters") or {}).get("lastChanged") or {}) if isinstance(body.get("filters"), dict) else {}
        )
        if last_changed.get("value"):
            since = parse_utc_datetime(last_changed["value"])
            if since is None:
                return self._bare(400, "The lastChanged filter needs an ISO 8601 value")
        with self.lock:
            rows = []
            for number, record in sorted(self.employees.items()):
                if since is not None and record["lastChanged"] < since:
                    continue
                view = self._view(number)
                rows.append({"id": view["id"], **{f: view.get(f) for f in fields if f != "id"}})
        self._corrupt(rows)
        headers = [
            {"id": f, "type": FIELDS.get(f, ("text", f))[0], "name": FIELDS.get(f, ("text", f))[1]} for f in fields
        ]
        return json_response({"title": body.get("title") or "Custom report", "fields": headers, "employees": rows})

    def meta_fields(self, request: Request, company: str) -> Response:
        if (refused := self._guard(request, company)) is not None:
            return refused
        return json_response([{"id": f, "name": name, "type": kind, "alias": f} for f, (kind, name) in FIELDS.items()])

    # -- test helpers --------------------------------------------------------------------------------------------

    def remove_employee(self, employee_id: int) -> None:
        """Delete an employee (BambooHR's API cannot; an administrator can), leaving a Deleted change behind."""
        with self.lock:
            self.employees.pop(employee_id)
            self.deleted[employee_id] = _now()


def create_app(firm: Firm | None = None) -> BambooHRSandbox:
    return BambooHRSandbox(firm)
