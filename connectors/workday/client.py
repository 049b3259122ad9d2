"""Workday connector: the firm's workers, read-only, from the HR system that owns the person.

Workday Web Services (SOAP) `Human_Resources/Get_Workers`, authenticated with WS-Security UsernameToken (an
Integration System User) or with an OAuth bearer token from a registered API client's refresh token. Records are
effective-dated: a full read asks for every worker as of one moment; an incremental read asks the transaction log
for workers whose data was entered in (since, now], then for those whose future-dated changes took effect in that
window. Pages hold up to 999 workers and say their totals in Response_Results. Faults are SOAP faults.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

import requests
from lxml import etree

from connectors.base import (
    AuthenticationFailed,
    ConnectionTestResult,
    Connector,
    ConnectorError,
    FormField,
    ObjectSpec,
    Page,
    RejectedRecord,
    SourceRecord,
    VendorError,
    json_object,
    objects_by_name,
    parse_utc_datetime,
)
from connectors.workday.records import (
    BSVC,
    NS,
    PARSER,
    SOAP_ENV,
    WORKER_FIELDS,
    WSSE,
    is_client_fault,
    iso_moment,
    parse_fault,
    worker_fields,
    xml_int,
)

DEFAULT_VERSION = "v42.0"
PAGE_MAX = 999  # Response_Filter/Count may not exceed 999
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"  # noqa: S105


@dataclass(frozen=True)
class ReadPosition:
    """Where a read is: the entry window (since, through], the query (all, updated, effective) and pages done.

    Stored as the cursor between pages so a restarted read resumes the same query at the next page.
    """

    since: datetime | None
    through: datetime
    query: str  # "all" (no since), "updated" then "effective" (incremental)
    pages_done: int = 0

    def text(self) -> str:
        since = iso_moment(self.since) if self.since else "-"
        return f"resume|{since}|{iso_moment(self.through)}|{self.query}|{self.pages_done}"

    @classmethod
    def parse(cls, cursor: str) -> ReadPosition:
        try:
            _tag, since, through, query, pages = cursor.split("|")
            position = cls(
                since=None if since == "-" else parse_utc_datetime(since),
                through=parse_utc_datetime(through),  # type: ignore[arg-type]
                query=query,
                pages_done=int(pages),
            )
        except ValueError:
            raise ConnectorError(f"Not a Workday read position: {cursor!r}") from None
        if position.through is None or position.query not in ("all", "updated", "effective"):
            raise ConnectorError(f"Not a Workday read position: {cursor!r}")
        return position


class WorkdayConnector(Connector):
    vendor = "workday"
    label = "Workday"
    category = "hr"
    objects = objects_by_name(
        ObjectSpec("workers", "Workers", readable=True, writable=False, page_size=PAGE_MAX, fields=WORKER_FIELDS),
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.session.final_answer_detector = is_client_fault
        self.tenant = (self.credentials.get("tenant") or "").strip()
        self.version = (self.credentials.get("api_version") or DEFAULT_VERSION).strip()
        self.uses_oauth = bool((self.credentials.get("refresh_token") or "").strip())
        self._access_token: str | None = None
        # Tests swap the clock to read "as of" a chosen moment; Workday answers as of the moment asked.
        self.clock = lambda: datetime.now(UTC).replace(microsecond=0)

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField("tenant", "Tenant", help="The tenant name in your Workday URLs, e.g. acme or acme_impl."),
            FormField(
                "api_version",
                "Web service version",
                initial=DEFAULT_VERSION,
                help="The Workday Web Services version in the endpoint path, e.g. v42.0. Some tenants refuse newer ones.",
            ),
            FormField(
                "username",
                "Integration system user",
                required=False,
                help="The ISU's user name (WS-Security), e.g. ISU_Integrations. Leave blank to use an API client instead.",
            ),
            FormField("password", "ISU password", kind="secret", required=False),
            FormField(
                "client_id",
                "API client ID",
                required=False,
                help="From Register API Client for Integrations, when you use OAuth rather than an ISU password.",
            ),
            FormField("client_secret", "API client secret", kind="secret", required=False),
            FormField(
                "refresh_token",
                "Refresh token",
                kind="secret",
                required=False,
                help="The API client's non-expiring refresh token (Manage Refresh Tokens for Integrations).",
            ),
        ]

    # -- HTTP ----------------------------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/ccx/service/{quote(self.tenant, safe='')}/Human_Resources/{quote(self.version)}"

    def _token(self) -> str:
        if self._access_token:
            return self._access_token
        response = self.session.post(
            f"{self.base_url}/ccx/oauth2/{quote(self.tenant, safe='')}/token",
            data={"grant_type": "refresh_token", "refresh_token": self.credentials.get("refresh_token", "")},
            auth=(self.credentials.get("client_id", ""), self.credentials.get("client_secret", "")),
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            body = json_object(response)
            reason = self.session.redact(body.get("error_description") or body.get("error") or "")
            raise AuthenticationFailed(
                f"Workday refused the API client or its refresh token (HTTP {response.status_code}"
                + (f": {reason}" if reason else "")
                + ")."
            )
        token = str(response.json().get("access_token") or "")
        if not token:
            raise AuthenticationFailed("Workday's token endpoint answered without an access token.")
        self.session.add_secrets([token])
        self._access_token = token
        return token

    def _envelope(self, body: str) -> bytes:
        header = ""
        if not self.uses_oauth:
            user = f"{self.credentials.get('username', '')}@{self.tenant}"
            header = (
                f'<env:Header><wsse:Security xmlns:wsse="{WSSE}" env:mustUnderstand="1">'
                f"<wsse:UsernameToken><wsse:Username>{escape(user)}</wsse:Username>"
                f'<wsse:Password Type="{PASSWORD_TEXT}">{escape(self.credentials.get("password", ""))}</wsse:Password>'
                "</wsse:UsernameToken></wsse:Security></env:Header>"
            )
        return f'<env:Envelope xmlns:env="{SOAP_ENV}">{header}<env:Body>{body}</env:Body></env:Envelope>'.encode()

    def call(self, operation: str, body: str) -> etree._Element:
        """POST one SOAP request and return the operation's response element; VendorError etc. on a fault."""
        for attempt in (1, 2):
            headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'}
            if self.uses_oauth:
                headers["Authorization"] = f"Bearer {self._token()}"
            response = self.session.post(self.endpoint, data=self._envelope(body), headers=headers)
            fault = parse_fault(response.content) if response.status_code != 200 else None
            if fault and "authenticationError" in fault.code and self.uses_oauth and attempt == 1:
                self._access_token = None  # expired or revoked: one fresh token, then believe the answer
                continue
            break
        if response.status_code == 200:
            try:
                root = etree.fromstring(response.content, PARSER)  # noqa: S320 - hardened parser
            except etree.XMLSyntaxError as exc:
                raise VendorError(f"Workday answered {operation} with XML that does not parse ({exc}).") from None
            result = root.find(f"env:Body/wd:{operation}_Response", NS)
            if result is None:
                raise VendorError(f"Workday answered {operation} without a {operation}_Response.")
            return result
        if fault is None:
            raise VendorError(
                f"Workday answered {operation} with HTTP {response.status_code} and no SOAP fault.",
                status=response.status_code,
            )
        message = self.session.redact(fault.message)
        if "authenticationError" in fault.code:
            how = "the API client's token" if self.uses_oauth else "the integration system user's name or password"
            raise AuthenticationFailed(f"Workday refused {how} ({fault.code}: {message}).")
        if "permissionError" in fault.code or "Permission" in fault.message:
            raise AuthenticationFailed(
                f"Workday denied {operation} ({fault.code}: {message}): grant the integration system user's "
                "security group the domain that covers it."
            )
        raise VendorError(f"Workday refused {operation} ({fault.code}: {message})", status=500, code=fault.code)

    # -- contract ------------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        if not self.tenant:
            return ConnectionTestResult(ok=False, message="Enter the Workday tenant name.")
        if not self.uses_oauth and not self.credentials.get("username"):
            return ConnectionTestResult(
                ok=False, message="Enter an integration system user and password, or an API client and refresh token."
            )
        try:
            result = self.call("Get_Workers", self._request(position=None, page=1, count=1))
        except (ConnectorError, requests.RequestException) as exc:
            return ConnectionTestResult.failed(exc, vendor="Workday")
        total = xml_int(result.findtext("wd:Response_Results/wd:Total_Results", namespaces=NS))
        how = "an API client" if self.uses_oauth else f"integration system user {self.credentials.get('username')}"
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to Workday tenant {self.tenant} ({self.version}) as {how}; {total} workers visible.",
            detail={"tenant": self.tenant, "version": self.version, "workers": total},
        )

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        self.object_spec(object_name)
        count = max(1, min(page_size or PAGE_MAX, PAGE_MAX))
        if since and since.startswith("resume|"):
            position = ReadPosition.parse(since)
        elif since:
            moment = parse_utc_datetime(since)
            if moment is None:
                raise ConnectorError(f"Not an ISO 8601 cursor: {since!r}")
            position = ReadPosition(since=moment, through=self.clock(), query="updated")
        else:
            position = ReadPosition(since=None, through=self.clock(), query="all")

        queries = ["all"] if position.query == "all" else ["updated", "effective"]
        seen: set[str] = set()
        for query in queries[queries.index(position.query) :]:
            page = position.pages_done + 1 if query == position.query else 1
            while True:
                at = ReadPosition(since=position.since, through=position.through, query=query, pages_done=page - 1)
                result = self.call("Get_Workers", self._request(position=at, page=page, count=count))
                total_pages = xml_int(result.findtext("wd:Response_Results/wd:Total_Pages", namespaces=NS))
                total = xml_int(result.findtext("wd:Response_Results/wd:Total_Results", namespaces=NS))
                records, rejects = self._parse_workers(result, seen)
                last_query = query == queries[-1]
                done = page >= total_pages
                cursor = iso_moment(position.through) if (done and last_query) else None
                if cursor is None:
                    following = ReadPosition(position.since, position.through, query, page)
                    if done:  # this query is finished: resume at the next one's first page
                        next_query = queries[queries.index(query) + 1]
                        following = ReadPosition(position.since, position.through, next_query, 0)
                    cursor = following.text()
                yield Page(
                    records=records,
                    rejects=rejects,
                    cursor=cursor,
                    has_more=not (done and last_query),
                    total=total if query == "all" else None,
                )
                if done:
                    break
                page += 1

    # -- requests ------------------------------------------------------------------------------------------------

    def _request(self, *, position: ReadPosition | None, page: int, count: int) -> str:
        """A Get_Workers_Request: the whole population as of a moment, or the workers changed in a window."""
        through = position.through if position else self.clock()
        criteria = ""
        if position is not None and position.query != "all":
            since = iso_moment(position.since) if position.since else iso_moment(through)
            bounds = (
                ("Updated_From", "Updated_Through")
                if position.query == "updated"
                else (
                    "Effective_From",
                    "Effective_Through",
                )
            )
            criteria = (
                "<wd:Request_Criteria><wd:Transaction_Log_Criteria_Data><wd:Transaction_Date_Range_Data>"
                f"<wd:{bounds[0]}>{since}</wd:{bounds[0]}><wd:{bounds[1]}>{iso_moment(through)}</wd:{bounds[1]}>"
                "</wd:Transaction_Date_Range_Data></wd:Transaction_Log_Criteria_Data></wd:Request_Criteria>"
            )
        moment = iso_moment(through)
        return (
            f'<wd:Get_Workers_Request xmlns:wd="{BSVC}" wd:version="{escape(self.version)}">'
            f"{criteria}"
            "<wd:Response_Filter>"
            f"<wd:As_Of_Effective_Date>{moment[:10]}</wd:As_Of_Effective_Date>"
            f"<wd:As_Of_Entry_DateTime>{moment}</wd:As_Of_Entry_DateTime>"
            f"<wd:Page>{page}</wd:Page><wd:Count>{count}</wd:Count>"
            "</wd:Response_Filter>"
            "<wd:Response_Group>"
            "<wd:Include_Reference>true</wd:Include_Reference>"
            "<wd:Include_Personal_Information>true</wd:Include_Personal_Information>"
            "<wd:Include_Employment_Information>true</wd:Include_Employment_Information>"
            "<wd:Include_Compensation>true</wd:Include_Compensation>"
            "<wd:Include_Organizations>true</wd:Include_Organizations>"
            "<wd:Include_Transaction_Log_Data>true</wd:Include_Transaction_Log_Data>"
            "</wd:Response_Group>"
            "</wd:Get_Workers_Request>"
        )

    # -- parsing -------------------------------------------------------------------------------------------------

    def _parse_workers(self, result: etree._Element, seen: set[str]) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        records: list[SourceRecord] = []
        rejects: list[RejectedRecord] = []
        for worker in result.iterfind("wd:Response_Data/wd:Worker", NS):
            raw = etree.tostring(worker, encoding="unicode")
            data, problem = worker_fields(worker)
            wid = data.get("WID")
            if problem:
                rejects.append(RejectedRecord(external_id=wid or None, reason=problem, raw=raw))
                continue
            if wid in seen:
                continue  # found by the entry window and again by the effective window
            seen.add(wid)
            records.append(SourceRecord(external_id=wid, updated_at=data["Transaction_Entry_Moment"], data=data))
        return records, rejects
