"""The API's documents: one schema per resource, what the OpenAPI document publishes."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, Field, create_model


def storable(value: str) -> str:
    """Text PostgreSQL can store: no NUL, no lone surrogates (psycopg cannot encode them)."""
    if "\x00" in value:
        raise ValueError("NUL characters are not accepted.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode.") from None
    return value


def one_line(value: str) -> str:
    value = " ".join(storable(value).split())
    if not value:
        raise ValueError("This cannot be blank.")
    return value


Text = Annotated[str, AfterValidator(storable)]
# Text on one line with something in it (blank or only spaces is refused, and the schema says so).
Line = Annotated[str, Field(pattern=r"\S"), AfterValidator(one_line)]
SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
Slug = Annotated[str, Field(pattern=SLUG, max_length=40)]
# Row ids: PostgreSQL bigint, and never more than JSON numbers carry exactly.
MAX_ID = 2**53
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Problem(Schema):
    """An RFC 9457 problem document (application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


# --- Partner resources -------------------------------------------------------------------------


class PlanOut(Schema):
    id: int
    name: str
    monthly_price: Decimal
    currency: str
    included_records: int
    overage_per_1000: Decimal
    max_connections: int
    max_flows: int
    min_sync_interval_minutes: int
    sla_support_hours: int
    sla_resolution_hours: int
    sla_freshness_hours: int
    # The systems the plan includes, {vendor key: connections per environment}; empty: every system.
    included_systems: dict[str, int]


class ClientOut(Schema):
    slug: str
    name: str
    status: Literal["active", "suspended"]
    plan_id: int | None
    plan: str | None
    workspace_path: str
    created_at: datetime


class ClientIn(Schema):
    name: Annotated[Line, Field(max_length=120)]
    slug: Annotated[str, Field(pattern=r"^$|" + SLUG, max_length=40)] = ""
    plan_id: Id
    admin_email: Annotated[Text, Field(max_length=254)]
    admin_name: Annotated[Text, Field(max_length=150)] = ""


class ClientPatch(Schema):
    plan_id: Id


class KeyIn(Schema):
    name: Annotated[Line, Field(max_length=80)]
    scopes: Annotated[list[Annotated[str, Field(max_length=40)]], Field(min_length=1, max_length=16)]
    expires_at: datetime | None = None


class KeyOut(Schema):
    id: int
    name: str
    kind: Literal["partner", "client"]
    client: str | None
    prefix: str
    scopes: list[str]
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    state: Literal["active", "revoked", "expired"]


class KeyIssued(KeyOut):
    key: str = Field(description="The whole key. Shown this once: only a hash of it is stored.")


class TemplateOut(Schema):
    id: int
    key: str
    install_key: str
    name: str
    summary: str
    latest_version: int | None


class DeploymentIn(Schema):
    client: Slug
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="A version number; the latest when absent.")


class DeploymentOut(Schema):
    id: int
    template_id: int
    client: str
    version: int
    install_key: str


class StatementOut(Schema):
    client: str
    month: date
    plan: str | None
    currency: str
    records_synced: int
    included_records: int
    overage_records: int
    monthly_price: Decimal
    overage_amount: Decimal
    total: Decimal


class UsageOut(Schema):
    client: str
    months: list[StatementOut]


# --- Client resources ---------------------------------------------------------------------------


class ConnectionOut(Schema):
    id: int
    name: str
    vendor: str
    base_url: str
    environment: Literal["production", "sandbox"]
    status: Literal["untested", "ok", "failing"]
    last_error: str
    last_tested_at: datetime | None
    credentials_rotated_at: datetime | None
    created_at: datetime


class ConnectionIn(Schema):
    name: Annotated[Line, Field(max_length=120)]
    vendor: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]
    base_url: Annotated[Text, Field(max_length=300)]
    environment: Literal["production", "sandbox"] = Field(
        default="production", description="Sandbox connections serve flows built and tested before promotion."
    )
    credentials: dict[Annotated[str, Field(max_length=60)], Annotated[Text, Field(max_length=20000)]] = Field(
        default_factory=dict, description="The connector's credential fields; stored encrypted, never returned."
    )


class ConnectionTestOut(Schema):
    ok: bool
    message: str
    connection: ConnectionOut


class FlowOut(Schema):
    id: int
    name: str
    template_key: str
    entity: str
    source_connection_id: int
    source_object: str
    environment: Literal["production", "sandbox"]
    trigger: str
    schedule_minutes: int | None
    enabled: bool
    created_at: datetime


class InstallIn(Schema):
    template: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9/_-]{0,59}$")]
    connections: dict[Annotated[str, Field(max_length=40)], Id] = Field(
        description="The connection id to use for each role the template names."
    )


class OfferedTemplateOut(Schema):
    key: str
    name: str
    roles: dict[str, list[str]]


class RunOut(Schema):
    id: int
    flow_id: int
    trigger: str
    status: Literal["queued", "running", "succeeded", "partial", "failed"]
    read: int
    created: int
    linked: int
    updated: int
    unchanged: int
    parked: int
    failed: int
    skipped: int
    expected: int | None
    progress_percent: int | None
    error: str
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class OutcomeCount(Schema):
    outcome: str
    label: str
    count: int


class RecordOut(Schema):
    id: int
    object: str
    external_id: str
    description: str
    outcome: str
    exception_id: int | None
    targets: list[dict]


class ReconciliationOut(Schema):
    run: RunOut
    outcomes: list[OutcomeCount]
    items: list[RecordOut]
    next_cursor: str | None


class ExceptionOut(Schema):
    id: int
    flow_id: int
    status: Literal["open", "retrying", "parked", "resolved", "ignored"]
    error_code: str
    message: str
    source_system: str
    target_system: str
    object: str
    external_id: str
    assignee_id: int | None
    assignee_email: str
    occurrences: int
    created_at: datetime
    last_seen_at: datetime


class ExceptionDetailOut(ExceptionOut):
    detail: str
    ignored_reason: str
    waiting_on_id: int | None
    resolved_at: datetime | None
    fix_actions: list[dict]


class ExceptionPatch(Schema):
    assignee_id: Id | None = Field(description="A person who works in this workspace, or null for nobody.")


class IgnoreIn(Schema):
    reason: Annotated[Line, Field(max_length=300)]


class CommentIn(Schema):
    body: Annotated[Text, Field(min_length=1, max_length=2000)]


class CommentOut(Schema):
    id: int
    author_email: str
    body: str
    created_at: datetime


class RetryOut(Schema):
    exception: ExceptionDetailOut
    resolved: int
    still_open: int
    released: int
    reasons: list[str]


class AuditEventOut(Schema):
    id: int
    at: datetime
    actor_email: str
    action: str
    target_type: str
    target_id: str
    summary: str


def page_of(item_schema):
    """A page of a list: its items and the cursor of the next page (null on the last). Each page schema
    has its own name, so the OpenAPI document publishes one component per resource's page."""
    name = f"{item_schema.__name__.removesuffix('Out')}Page"
    return create_model(name, __base__=Schema, items=(list[item_schema], ...), next_cursor=(str | None, ...))
