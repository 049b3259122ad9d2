"""Sage Intacct connector: customers, projects, employees and AR invoices over the XML Web Services gateway.

Why the XML gateway and not the REST API: every company with a Web Services subscription has it, with the
sender credentials a partner already holds; it covers every object the packaged flows need, AR invoices with
their lines and the company's custom fields included; and its `uniqueid` control turns a resubmitted request
into a refusal instead of a second invoice. The REST API (OAuth apps registered per partner, `start`/`size`
pages) is younger and its objects are still partly "uncertified"; it offers no equivalent of `uniqueid`.

How it talks: every call is one XML `<request>` POSTed to the gateway. Sign-in is `getAPISession` with the
sender and company credentials; its answer names a session id and the endpoint every later call must go to.
Intacct reports failures inside HTTP 200 (control, authentication or one function `<status>failure</status>`).
Reads are `query` pages of up to 2,000 rows in WHENMODIFIED, RECORDNO order; each page starts after the last
(WHENMODIFIED, RECORDNO) read rather than at an offset, so a record changed during a read cannot shift another
out of the pages. Writes send one function per record in one request (`create` or `update`, found by our
external id, which the company keeps in a custom field), with `uniqueid=true` and a control id kept across the
HTTP policy's retries: a retry of a request Intacct already carried out is refused, and the records it wrote are
then looked up instead of written twice.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET  # noqa: S405 -- only to build requests; responses are parsed by defusedxml
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import requests
from defusedxml.ElementTree import fromstring

from connectors.base import (
    AuthenticationFailed,
    ConnectionTestResult,
    Connector,
    ConnectorError,
    FormField,
    ObjectSpec,
    OutboundRecord,
    Page,
    RejectedRecord,
    SourceRecord,
    VendorError,
    WriteMode,
    WriteResult,
    chunks,
)
from connectors.intacct.records import (
    DATE_FORMAT,
    LINE_FIELDS,
    OBJECTS,
    REFERENCES,
    SYSTEM_FIELDS,
    UNKNOWN_REFERENCE,
    IntacctObject,
    after_filter,
    describe,
    errors_of,
    first_code,
    flatten,
    iso_to_when,
    nest,
    rate_limit_wait,
    request_xml,
    to_intacct_date,
    when,
    with_nested,
)

DEFAULT_BASE_URL = "https://api.intacct.com"
GATEWAY_PATH = "/ia/xml/xmlgw.phtml"
QUERY_PAGE_MAX = 2000  # rows one `query` call returns at most
DEFAULT_EXTERNAL_ID_FIELD = "INTEGRATION_RECORD_ID"
IN_LIST_MAX = 500  # external ids looked up per `in` filter

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept here and emulated the same way by connectors/intacct/sandbox.py:
# - WHENMODIFIED is read and filtered as "MM/DD/YYYY HH:MM:SS" in UTC (the API user's time zone set to GMT);
#   dates as MM/DD/YYYY. `query` returns a related or owned field as one element named with its dotted path.
# - a request holds at most 100 functions (WRITE_BATCH); past that the gateway refuses the whole request.
# - a resubmitted control id with uniqueid=true fails the whole request at control level with errorno
#   XL03000009 and nothing is executed again; the sandbox's wording is ours.
# - throttling answers HTTP 429 with errorno GW-0010 in an XML body and no Retry-After; an expired or unknown
#   session answers an authentication failure inside HTTP 200 (XL03000006), after which we sign in again once.
# - the create answer names the new record as <data listtype="objects"><customer><RECORDNO>..</RECORDNO>...
# ---------------------------------------------------------------------------------------------------------------
WRITE_BATCH = 100
DUPLICATE_CONTROL_ID = "XL03000009"


class IntacctConnector(Connector):
    vendor = "intacct"
    label = "Sage Intacct"
    category = "erp"
    objects = {
        name: ObjectSpec(
            name=name,
            label=obj.label,
            writable=True,
            batch_size=WRITE_BATCH,
            page_size=QUERY_PAGE_MAX,
            fields=(*obj.fields, *(("ARINVOICEITEMS",) if obj.lines else ())),
        )
        for name, obj in OBJECTS.items()
    }

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, credentials: Mapping[str, str], **kwargs):
        super().__init__(base_url=base_url, credentials=credentials, **kwargs)
        self.session.rate_limit_detector = rate_limit_wait
        self.external_id_field = (self.credentials.get("external_id_field") or DEFAULT_EXTERNAL_ID_FIELD).upper()
        self.endpoint = self.base_url + GATEWAY_PATH
        self._session_id: str | None = None

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField("sender_id", "Web Services sender ID", help="Your Web Services developer sender ID."),
            FormField("sender_password", "Sender password", kind="secret"),
            FormField("company_id", "Company ID", help="The company's ID as you sign in to Sage Intacct."),
            FormField("user_id", "Web Services user ID", help="A Web Services-only user of the company."),
            FormField("user_password", "User password", kind="secret"),
            FormField(
                "entity_id",
                "Entity (location) ID",
                required=False,
                help="In a multi-entity company, the entity to work in; empty for the top level.",
            ),
            FormField(
                "external_id_field",
                "External ID custom field",
                required=False,
                initial=DEFAULT_EXTERNAL_ID_FIELD,
                help="A text custom field on customers, projects, employees and AR invoices that holds our id.",
            ),
        ]

    # -- the gateway ------------------------------------------------------------------------------------------

    def _request_xml(self, functions: list[ET.Element], *, control_id: str, unique: bool, login: bool) -> bytes:
        return request_xml(
            functions,
            credentials=self.credentials,
            session_id=None if login else self._session_id or "",
            control_id=control_id,
            unique=unique,
        )

    def _post(self, url: str, body: bytes) -> ET.Element:
        response = self.session.post(url, data=body, headers={"Content-Type": "application/xml"})
        if response.status_code != 200:
            raise VendorError(
                f"Sage Intacct answered HTTP {response.status_code}: {self._body_errors(response)}",
                status=response.status_code,
            )
        try:
            return fromstring(response.content)
        except Exception:  # defusedxml raises ParseError and its own refusals alike
            raise VendorError("Sage Intacct answered with something that is not XML.", status=200) from None

    def _body_errors(self, response: requests.Response) -> str:
        try:
            return describe(errors_of(fromstring(response.content))) or response.reason
        except Exception:
            return response.reason or "no explanation"

    def _sign_in(self) -> None:
        function = ET.Element("function", controlid="getAPISession")
        ET.SubElement(function, "getAPISession")
        body = self._request_xml([function], control_id=uuid.uuid4().hex, unique=False, login=True)
        root = self._post(self.base_url + GATEWAY_PATH, body)
        self._check_control(root)
        self._check_authentication(root)
        result = root.find("./operation/result")
        if result is None or result.findtext("status") != "success":
            raise AuthenticationFailed(f"Sage Intacct refused the session: {describe(errors_of(result))}")
        session_id = result.findtext("./data/api/sessionid") or ""
        endpoint = (result.findtext("./data/api/endpoint") or "").strip()
        self.session.add_secrets([session_id])
        self._session_id = session_id
        # Later calls must go to the endpoint the session names (the company's own pod).
        self.endpoint = endpoint or self.base_url + GATEWAY_PATH

    def _check_control(self, root: ET.Element) -> None:
        if root.findtext("./control/status") == "failure":
            errors = errors_of(root)
            if any(e["errorno"] == "XL03000006" for e in errors) or "sender" in describe(errors).lower():
                raise AuthenticationFailed(f"Sage Intacct refused the Web Services sender: {describe(errors)}")
            raise VendorError(f"Sage Intacct refused the request: {describe(errors)}", code=first_code(errors))

    @staticmethod
    def _check_authentication(root: ET.Element) -> None:
        if root.findtext("./operation/authentication/status") == "failure":
            errors = errors_of(root.find("./operation"))
            raise AuthenticationFailed(f"Sage Intacct refused the sign-in: {describe(errors)}")

    def call(self, functions: list[ET.Element], *, unique: bool = False) -> list[ET.Element]:
        """Send functions in one request with the session (signing in first, and once more if it expired);
        return their <result> elements in order. The control id stays the same across the policy's retries."""
        control_id = uuid.uuid4().hex
        for attempt in (1, 2):
            if self._session_id is None:
                self._sign_in()
            root = self._post(
                self.endpoint, self._request_xml(functions, control_id=control_id, unique=unique, login=False)
            )
            self._check_control(root)
            if root.findtext("./operation/authentication/status") == "failure" and attempt == 1:
                self._session_id = None  # the session expired: sign in again, once
                control_id = uuid.uuid4().hex
                continue
            self._check_authentication(root)
            return root.findall("./operation/result")
        raise AssertionError("unreachable")

    # -- contract ----------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        company = self.credentials.get("company_id") or "the company"
        try:
            self._session_id = None
            self._sign_in()
            # One request, one function per object: is the external id field on each of them?
            functions = [self._query(name, [self.external_id_field], None, page_size=1) for name in OBJECTS]
            results = self.call(functions)
        except (ConnectorError, requests.RequestException) as exc:
            return ConnectionTestResult.failed(exc, vendor="Sage Intacct")
        missing = [
            name for name, result in zip(OBJECTS, results, strict=True) if result.findtext("status") != "success"
        ]
        customers = results[0].find("data")
        count = int(customers.get("totalcount", "0")) if customers is not None else 0
        message = (
            f"Connected to Sage Intacct company {company} as {self.credentials.get('user_id', '')} ({count} customers)."
        )
        if missing:
            message += f" The custom field {self.external_id_field} is missing on {', '.join(missing)}."
        return ConnectionTestResult(
            ok=True, message=message, detail={"customers": count, "objects_missing_external_id": missing}
        )

    def _object(self, object_name: str) -> IntacctObject:
        try:
            return OBJECTS[object_name]
        except KeyError:
            raise ConnectorError(f"Sage Intacct has no object {object_name!r}; known: {', '.join(OBJECTS)}") from None

    def _query(
        self, object_name: str, fields: list[str], condition: ET.Element | None, *, page_size: int, offset: int = 0
    ) -> ET.Element:
        function = ET.Element("function", controlid=f"query-{object_name}")
        query = ET.SubElement(function, "query")
        ET.SubElement(query, "object").text = object_name
        select = ET.SubElement(query, "select")
        for name in dict.fromkeys([*SYSTEM_FIELDS, *fields]):
            ET.SubElement(select, "field").text = name
        if condition is not None:
            ET.SubElement(query, "filter").append(condition)
        orderby = ET.SubElement(query, "orderby")
        for name in ("WHENMODIFIED", "RECORDNO"):
            order = ET.SubElement(orderby, "order")
            ET.SubElement(order, "field").text = name
            ET.SubElement(order, "ascending")
        ET.SubElement(query, "pagesize").text = str(page_size)
        ET.SubElement(query, "offset").text = str(offset)
        return function

    def _result_data(self, result: ET.Element, what: str) -> ET.Element:
        if result.findtext("status") != "success":
            errors = errors_of(result)
            raise VendorError(f"Sage Intacct could not {what}: {describe(errors)}", code=first_code(errors))
        data = result.find("data")
        if data is None:
            raise VendorError(f"Sage Intacct answered {what} without data.")
        return data

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        obj = self._object(object_name)
        size = max(1, min(page_size or QUERY_PAGE_MAX, QUERY_PAGE_MAX))
        fields = [*obj.fields, self.external_id_field]
        after: tuple[str, int] | None = None  # the last (WHENMODIFIED, RECORDNO) read
        watermark = iso_to_when(since) if since else None
        cursor = since
        while True:
            first_page = after is None
            result = self.call([self._query(object_name, fields, after_filter(watermark, after), page_size=size)])[0]
            data = self._result_data(result, f"read {obj.label.lower()}")
            records, rejects = [], []
            for element in data.findall(object_name):
                record, reject = self._source_record(obj, flatten(element))
                if reject:
                    rejects.append(reject)
                    continue
                records.append(record)
            keyed = [(r.data["WHENMODIFIED"], int(r.external_id)) for r in records]
            if keyed:
                last = max(keyed, key=lambda k: (when(k[0]), k[1]))
                after = last
                cursor = when(last[0]).strftime("%Y-%m-%dT%H:%M:%SZ")
            remaining = int(data.get("numremaining") or 0)
            total = int(data.get("totalcount") or 0) if first_page else None
            has_more = remaining > 0 and bool(keyed)
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=has_more, total=total)
            if not has_more:
                return

    def _source_record(
        self, obj: IntacctObject, raw: dict[str, str | None]
    ) -> tuple[SourceRecord | None, RejectedRecord | None]:
        record_no = raw.get("RECORDNO")
        if not record_no or not record_no.isdigit():
            return None, RejectedRecord(external_id=None, reason="The record has no RECORDNO.", raw=raw)
        try:
            modified = when(raw.get("WHENMODIFIED") or "")
        except ValueError:
            reason = f"WHENMODIFIED {raw.get('WHENMODIFIED')!r} is not a date and time."
            return None, RejectedRecord(external_id=record_no, reason=reason, raw=raw)
        data: dict[str, Any] = dict(raw)
        for name in obj.date_fields:
            if data.get(name):
                try:
                    data[name] = datetime.strptime(data[name], DATE_FORMAT).date().isoformat()
                except ValueError:
                    reason = f"{name} {data[name]!r} is not a date."
                    return None, RejectedRecord(external_id=record_no, reason=reason, raw=raw)
        updated = modified.strftime("%Y-%m-%dT%H:%M:%SZ")
        return SourceRecord(external_id=record_no, updated_at=updated, data=with_nested(data)), None

    # -- writes ----------------------------------------------------------------------------------------------

    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        obj = self._object(object_name)
        results: list[WriteResult] = []
        for batch in chunks(records, WRITE_BATCH):
            results.extend(self._write_batch(obj, batch, mode))
        return results

    def _write_batch(self, obj: IntacctObject, batch: list[OutboundRecord], mode: WriteMode) -> list[WriteResult]:
        batch, unresolved = self._resolve_references(obj, batch)
        known = {r.external_id: r.target_id for r in batch if r.target_id}
        if mode == "upsert":
            known.update(self._record_numbers(obj, [r.external_id for r in batch if not r.target_id]))
        functions, plan = [], []
        results: list[WriteResult | None] = [None] * len(batch)
        for index, record in enumerate(batch):
            if index in unresolved:
                results[index] = unresolved[index]
                continue
            target = known.get(record.external_id)
            if mode == "update" and not target:
                results[index] = WriteResult(
                    record.external_id, "failed", None, "MISSING_ID", "This record has no Intacct RECORDNO yet."
                )
                continue
            action = "create" if mode == "create" or (mode == "upsert" and not target) else "update"
            functions.append(self._write_function(obj, record, action, target, index))
            plan.append((index, action))
        if functions:
            try:
                answers = self.call(functions, unique=True)
            except VendorError as exc:
                if exc.code != DUPLICATE_CONTROL_ID:
                    raise
                # Intacct already carried this very request out (its answer was lost): find what it wrote.
                return self._after_duplicate(obj, batch, results, plan)
            for (index, action), answer in zip(plan, answers, strict=True):
                results[index] = self._write_result(
                    obj, batch[index], action, answer, known.get(batch[index].external_id)
                )
        return [r for r in results if r is not None]

    def _resolve_references(
        self, obj: IntacctObject, batch: list[OutboundRecord]
    ) -> tuple[list[OutboundRecord], dict[int, WriteResult]]:
        """The batch with each {"RECORDNO": n} reference replaced by the record's id (one query per object
        referred to), and a failed result for each record whose reference Intacct does not hold."""
        fields_of = REFERENCES.get(obj.name, {})
        wanted: dict[str, set[str]] = {}
        for record in batch:
            for name, target in fields_of.items():
                value = record.fields.get(name)
                if isinstance(value, Mapping) and value.get("RECORDNO"):
                    wanted.setdefault(target, set()).add(str(value["RECORDNO"]))
        ids = {
            target: self._ids_by_record_number(OBJECTS[target], sorted(numbers)) for target, numbers in wanted.items()
        }
        resolved: list[OutboundRecord] = []
        failed: dict[int, WriteResult] = {}
        for index, record in enumerate(batch):
            fields = dict(record.fields)
            for name, target in fields_of.items():
                value = fields.get(name)
                if not (isinstance(value, Mapping) and value.get("RECORDNO")):
                    continue
                found = ids[target].get(str(value["RECORDNO"]))
                if found is None:
                    message = (
                        f"Sage Intacct holds no {OBJECTS[target].label.lower()[:-1]} with RECORDNO {value['RECORDNO']}."
                    )
                    failed[index] = WriteResult(
                        record.external_id, "failed", record.target_id, UNKNOWN_REFERENCE, message
                    )
                fields[name] = found
            resolved.append(replace(record, fields=fields))
        return resolved, failed

    def _ids_by_record_number(self, obj: IntacctObject, record_numbers: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for some_numbers in chunks(record_numbers, IN_LIST_MAX):
            condition = ET.Element("in")
            ET.SubElement(condition, "field").text = "RECORDNO"
            for value in some_numbers:
                ET.SubElement(condition, "value").text = value
            function = self._query(obj.name, [obj.key_field], condition, page_size=QUERY_PAGE_MAX)
            data = self._result_data(self.call([function])[0], f"look up {obj.label.lower()}")
            for element in data.findall(obj.name):
                values = flatten(element)
                if values.get("RECORDNO") and values.get(obj.key_field):
                    found[values["RECORDNO"]] = values[obj.key_field]
        return found

    def _write_function(
        self, obj: IntacctObject, record: OutboundRecord, action: str, target: str | None, index: int
    ) -> ET.Element:
        function = ET.Element("function", controlid=f"{action}-{index}")
        element = ET.SubElement(ET.SubElement(function, action), obj.name)
        fields = {k: to_intacct_date(v) for k, v in record.fields.items() if k not in ("RECORDNO", "ARINVOICEITEMS")}
        if action == "update":
            ET.SubElement(element, "RECORDNO").text = str(target)
        fields[self.external_id_field] = record.external_id
        nest(element, fields, obj.fields)
        lines = record.fields.get("ARINVOICEITEMS") if obj.lines else None
        if lines:
            container_name, line_name = obj.lines.split("/")
            container = ET.SubElement(element, container_name)
            for line in lines:
                nest(ET.SubElement(container, line_name), {k: to_intacct_date(v) for k, v in line.items()}, LINE_FIELDS)
        return function

    def _write_result(
        self, obj: IntacctObject, record: OutboundRecord, action: str, answer: ET.Element, target: str | None
    ) -> WriteResult:
        if answer.findtext("status") == "success":
            written = answer.find("./data/*")
            record_no = written.findtext("RECORDNO") if written is not None else None
            outcome = "created" if action == "create" else "updated"
            return WriteResult(record.external_id, outcome, record_no or target)
        errors = errors_of(answer)
        return WriteResult(
            record.external_id,
            "failed",
            target,
            first_code(errors) or "FAILED",
            self.session.redact(describe(errors)) or "Sage Intacct did not save this record.",
        )

    def _after_duplicate(
        self, obj: IntacctObject, batch: list[OutboundRecord], results: list, plan: list[tuple[int, str]]
    ) -> list[WriteResult]:
        found = self._record_numbers(obj, [batch[index].external_id for index, _action in plan])
        for index, action in plan:
            record = batch[index]
            target = found.get(record.external_id) or record.target_id
            if target:
                results[index] = WriteResult(record.external_id, "created" if action == "create" else "updated", target)
            else:
                results[index] = WriteResult(
                    record.external_id,
                    "failed",
                    None,
                    DUPLICATE_CONTROL_ID,
                    "Sage Intacct had already carried out this request, but the record is not there: write it again.",
                )
        return [r for r in results if r is not None]

    def _record_numbers(self, obj: IntacctObject, external_ids: list[str]) -> dict[str, str]:
        """RECORDNO by our external id, for the ids already in Intacct (one query per IN_LIST_MAX ids)."""
        found: dict[str, str] = {}
        for chunk in chunks(external_ids, IN_LIST_MAX):
            condition = ET.Element("in")
            ET.SubElement(condition, "field").text = self.external_id_field
            for value in chunk:
                ET.SubElement(condition, "value").text = value
            function = self._query(obj.name, [self.external_id_field], condition, page_size=QUERY_PAGE_MAX)
            data = self._result_data(self.call([function])[0], f"look up {obj.label.lower()}")
            for element in data.findall(obj.name):
                values = flatten(element)
                if values.get(self.external_id_field) and values.get("RECORDNO"):
                    found[values[self.external_id_field]] = values["RECORDNO"]
        return found
