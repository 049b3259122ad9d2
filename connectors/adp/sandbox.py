"""ADP Workforce Now sandbox: a TLS server on loopback that requires ADP's mutual TLS, with the workers API and
the event notification queue.

The server certificate and the client certificate come from a demo CA built in code (`DemoPKI`), so a connection
must present the demo client certificate and trust the demo CA (DEMO_CREDENTIALS carries both). A certificate from
another CA fails the TLS handshake; no certificate gets ADP's 401 "proper client ssl certificate was not presented".
Routes: POST /auth/oauth/v2/token (client credentials, one-hour tokens), GET /hr/v2/workers ($top at most 100,
$skip, count=true; 204 past the end), GET /hr/v2/workers/{associateOID}, GET /core/v1/event-notification-messages
(the head of the queue with adp-msg-msgid, or 204) and DELETE .../{id} to acknowledge it. Throttling is 429 with
Retry-After. The firm's people are the workers (a few without a work email or a department, the firm's HR gaps);
`change_worker` and `hire` make the changes an HR clerk would.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.adp.client import COST_RATE_FIELD, MESSAGE_ID, PAGE_MAX
from connectors.http import TLSContextAdapter
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm
from connectors.sandbox.tls import DemoPKI

DEMO_PKI = DemoPKI("adp", organization="Halden & Rowe Consulting")
CLIENT_NAME = "HaldenRoweMutualSSL"  # ADP asks for the company name followed by MutualSSL as the CSR's CN
_certificate, _key = DEMO_PKI.client_certificate(CLIENT_NAME)
DEMO_CREDENTIALS = {
    "client_id": "9a6f2e1c-4b7d-4c3e-8f5a-2d1b0c9e8a7f",
    "client_secret": "adp-demo-secret-5e8c1a7d3b9f2046",
    "client_certificate": _certificate,
    "client_private_key": _key,
    "token_url": "",
    "ca_certificate": DEMO_PKI.ca_pem,
}
TOKEN_SECONDS = 3600
NO_CERTIFICATE = "proper client ssl certificate was not presented"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _oid(number: int) -> str:
    """An associateOID: ADP's own id for a person, unlike the employee number shown in the UI."""
    return "G3" + hashlib.sha256(f"adp-associate-{number}".encode()).hexdigest()[:14].upper()


def _gateway_error(request: Request, status: int, message: str) -> Response:
    """ADP's API gateway error body."""
    body = {
        "response": {
            "responseCode": status,
            "methodCode": request.method.lower(),
            "resourceUri": {"href": request.path},
            "serverRequestDateTime": _now(),
            "applicationCode": {"code": status, "typeCode": "error", "message": message},
        }
    }
    return json_response(body, status=status)


class ADPSandbox(SandboxApp):
    vendor = "adp"

    def routes(self) -> list[Rule]:
        return [
            Rule("/auth/oauth/v2/token", endpoint="token", methods=["POST"]),
            Rule("/hr/v2/workers", endpoint="list_workers", methods=["GET"]),
            Rule("/hr/v2/workers/<associate>", endpoint="get_worker", methods=["GET"]),
            Rule("/core/v1/event-notification-messages", endpoint="next_message", methods=["GET"]),
            Rule("/core/v1/event-notification-messages/<message_id>", endpoint="acknowledge", methods=["DELETE"]),
        ]

    # -- TLS -----------------------------------------------------------------------------------------------------

    def ssl_context(self):
        # A client certificate is optional at the handshake (one from another CA still fails it), so that a call
        # without one gets ADP's own HTTP answer; authenticate() refuses it.
        return DEMO_PKI.server_context(require_client_certificate=False)

    def control_session(self) -> requests.Session:
        session = requests.Session()
        session.mount("https://", TLSContextAdapter(DEMO_PKI.trusting_context()))
        return session

    # -- state ---------------------------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.workers: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, float] = {}
        self.queue: OrderedDict[str, dict[str, Any]] = OrderedDict()
        people = self.firm.people()
        self.number_by_email = {p["work_email"]: p["id"] for p in people}
        gaps = self.firm.hr_gaps()  # the firm's HR records without a work email or a department
        for person in people:
            record = self._record(person["id"], person)
            if gaps.get(person["id"]) == "work_email":
                record["email"] = None
            elif gaps.get(person["id"]) == "department":
                record["department"] = None
            self.workers[person["id"]] = record

    def _record(self, number: int, person: dict[str, Any]) -> dict[str, Any]:
        return {
            "number": number,
            "employee_number": person["employee_number"],
            "first_name": person["first_name"],
            "last_name": person["last_name"],
            "email": person["work_email"],
            "job_title": person["job_title"],
            "department": person["department"],
            "location": person["location"],
            "status": "Active" if person["status"] == "Active" else "Terminated",
            "hire_date": person["hire_date"],
            "termination_date": person["termination_date"],
            "pay": person["pay_rate"],
            "currency": person["currency"],
            "cost_rate": person["cost_rate"],
            "manager": self.number_by_email.get(person["supervisor_email"] or ""),
        }

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        """{"workers": N}: grow the population to N with more workers shaped like the firm's people."""
        unknown = set(volumes) - {"workers"}
        if unknown:
            raise ValueError(f"the adp sandbox seeds workers only, not {sorted(unknown)}")
        people = self.firm.people()
        number = max(self.workers)
        while len(self.workers) < volumes.get("workers", len(self.workers)):
            number += 1
            model = people[(number - 1) % len(people)]
            local, domain = model["work_email"].split("@")
            person = dict(model, employee_number=f"E{1000 + number}", work_email=f"{local}.{number}@{domain}")
            self.workers[number] = self._record(number, person)
        return {"workers": len(self.workers)}

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        """The worker as /hr/v2/workers renders it."""
        terminated = record["status"] == "Terminated"
        assignment: dict[str, Any] = {
            "itemID": f"{record['employee_number']}-1",
            "primaryIndicator": True,
            "hireDate": record["hire_date"],
            "positionID": f"HR{record['employee_number']}",
            "jobTitle": record["job_title"],
            "assignmentStatus": {"statusCode": {"codeValue": "T" if terminated else "A"}},
            "homeWorkLocation": {
                "nameCode": {"codeValue": record["location"][:3].upper(), "shortName": record["location"]}
            },
            "homeOrganizationalUnits": [
                {
                    "typeCode": {"codeValue": "Department"},
                    "nameCode": {"codeValue": record["department"][:6].upper(), "shortName": record["department"]},
                }
            ]
            if record["department"]
            else [],
            "baseRemuneration": {
                "annualRateAmount": {"amountValue": float(record["pay"]), "currencyCode": record["currency"]}
            },
        }
        if terminated:
            assignment["terminationDate"] = record["termination_date"]
        if record["manager"]:
            boss = self.workers[record["manager"]]
            assignment["reportsTo"] = [
                {
                    "associateOID": _oid(boss["number"]),
                    "workerID": {"idValue": boss["employee_number"]},
                    "reportsToWorkerName": {"formattedName": f"{boss['last_name']}, {boss['first_name']}"},
                }
            ]
        worker: dict[str, Any] = {
            "associateOID": _oid(record["number"]),
            "workerID": {"idValue": record["employee_number"]},
            "person": {
                "legalName": {
                    "givenName": record["first_name"],
                    "familyName1": record["last_name"],
                    "formattedName": f"{record['last_name']}, {record['first_name']}",
                }
            },
            "businessCommunication": {
                "emails": [{"nameCode": {"codeValue": "Work E-mail"}, "emailUri": record["email"]}]
                if record["email"]
                else []
            },
            "workerDates": {"originalHireDate": record["hire_date"]},
            "workerStatus": {"statusCode": {"codeValue": record["status"]}},
            "workAssignments": [assignment],
        }
        if terminated:
            worker["workerDates"]["terminationDate"] = record["termination_date"]
        if record["cost_rate"]:
            worker["customFieldGroup"] = {
                "amountFields": [
                    {
                        "nameCode": {"codeValue": COST_RATE_FIELD, "shortName": "Cost Rate"},
                        "amountValue": float(record["cost_rate"]),
                        "currencyCode": record["currency"],
                    }
                ]
            }
        return worker

    # -- changes an HR clerk makes (each queues an event notification) ---------------------------------------------

    def change_worker(self, number: int, event: str = "worker.work-assignment.modify", **changes: Any) -> str:
        """Change a worker's fields and queue the event ADP would publish; returns its message id."""
        with self.lock:
            self.workers[number].update(changes)
            return self._publish(event, number)

    def hire(self, person: dict[str, Any]) -> str:
        """Hire a person shaped like the firm's (worker.hire); returns the new worker's associateOID."""
        with self.lock:
            number = max(self.workers) + 1
            self.workers[number] = self._record(number, person)
            self._publish("worker.hire", number)
            return _oid(number)

    def _publish(self, event: str, number: int) -> str:
        message_id = f"0x_{secrets.token_hex(24)}"
        self.queue[message_id] = {
            "events": [
                {
                    "eventID": secrets.token_hex(8),
                    "eventNameCode": {"codeValue": event},
                    "recordDateTime": _now(),
                    "creationDateTime": _now(),
                    "data": {
                        "eventContext": {"worker": {"associateOID": _oid(number)}},
                        "output": {"worker": self._view(self.workers[number])},
                    },
                }
            ]
        }
        return message_id

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # -- vendor hooks ----------------------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """Mutual TLS on every call: the TLS layer verified any certificate presented; one must be, and be ours."""
        pem = request.environ.get("SSL_CLIENT_CERT")
        if pem:
            subject = x509.load_pem_x509_certificate(pem.encode()).subject
            names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if names and names[0].value == CLIENT_NAME:
                if request.path == "/auth/oauth/v2/token":
                    return None
                return self._bearer(request)
        if request.path == "/auth/oauth/v2/token":
            return json_response({"error": "invalid_request", "error_description": NO_CERTIFICATE}, status=401)
        return _gateway_error(request, 401, NO_CERTIFICATE)

    def _bearer(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        with self.lock:
            expiry = self.tokens.get(header[7:].strip()) if header.startswith("Bearer ") else None
        if expiry is None or expiry < time.monotonic():
            return _gateway_error(request, 401, "Invalid or expired access token")
        return None

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        response = _gateway_error(request, 429, "Too many requests")
        response.headers["Retry-After"] = str(math.ceil(retry_after))
        return response

    def server_error_response(self, request: Request) -> Response:
        return _gateway_error(request, 500, "Internal server error (injected by the sandbox)")

    def not_found_response(self, request: Request) -> Response:
        return _gateway_error(request, 404, f"{request.path} was not found")

    # -- endpoints -----------------------------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        auth = request.authorization
        client_id = request.form.get("client_id") or (auth.username if auth else "") or ""
        client_secret = request.form.get("client_secret") or (auth.password if auth else "") or ""
        if request.form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, status=400)
        if not (
            hmac.compare_digest(client_id, DEMO_CREDENTIALS["client_id"])
            and hmac.compare_digest(client_secret, DEMO_CREDENTIALS["client_secret"])
        ):
            return json_response(
                {"error": "invalid_client", "error_description": "The given client credentials were not valid"},
                status=401,
            )
        access = secrets.token_hex(16)
        with self.lock:
            self.tokens[access] = time.monotonic() + TOKEN_SECONDS
        return json_response(
            {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_SECONDS, "scope": "api"}
        )

    def list_workers(self, request: Request) -> Response:
        try:
            top = min(int(request.args.get("$top", PAGE_MAX)), PAGE_MAX)
            skip = int(request.args.get("$skip", 0))
        except ValueError:
            return _gateway_error(request, 400, "$top and $skip must be whole numbers")
        if top < 1 or skip < 0:
            return _gateway_error(request, 400, "$top must be positive and $skip not negative")
        with self.lock:
            numbers = sorted(self.workers)
            chunk = [self._view(self.workers[n]) for n in numbers[skip : skip + top]]
            total = len(numbers)
        if not chunk:
            return Response(status=204)
        for position in self.malformed_positions(len(chunk)):
            if position % 2 == 0:
                chunk[position].pop("associateOID")
            else:
                chunk[position]["workerDates"]["originalHireDate"] = "02/31/2019"
        body: dict[str, Any] = {"workers": chunk}
        if request.args.get("count") == "true":
            body["meta"] = {"totalNumber": total}
        return json_response(body)

    def get_worker(self, request: Request, associate: str) -> Response:
        with self.lock:
            record = next((r for n, r in self.workers.items() if _oid(n) == associate), None)
            if record is None:
                return _gateway_error(request, 404, f"No worker with associateOID {associate}")
            return json_response({"workers": [self._view(record)]})

    def next_message(self, request: Request) -> Response:
        with self.lock:
            if not self.queue:
                return Response(status=204)
            message_id, body = next(iter(self.queue.items()))
        return json_response(body, headers={MESSAGE_ID: message_id})

    def acknowledge(self, request: Request, message_id: str) -> Response:
        with self.lock:
            if self.queue.pop(message_id, None) is None:
                return _gateway_error(request, 404, f"No event notification message {message_id}")
        return Response(status=200)


def create_app(firm: Firm | None = None) -> ADPSandbox:
    return ADPSandbox(firm)
