"""The canonical model: one shape for each business object, whatever system it came from.

Money is Decimal with a currency, dates are dates, hours are Decimal. Every record can be
reached from any system's id through ExternalRef.
"""

from __future__ import annotations

from django.db import models

from integrations.models.connections import Environment

MONEY = {"max_digits": 14, "decimal_places": 2}
HOURS = {"max_digits": 8, "decimal_places": 2}


class Customer(models.Model):
    name = models.CharField(max_length=200)
    # The name as match keys compare it ("Piper Health Ltd." -> "piper health"), kept in step on save.
    name_key = models.CharField(max_length=200, blank=True, db_index=True, editable=False)
    domain = models.CharField(max_length=200, blank=True, db_index=True)
    registration_number = models.CharField(max_length=60, blank=True, db_index=True)
    payment_terms = models.CharField(max_length=60, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    billing_city = models.CharField(max_length=100, blank=True)
    billing_country = models.CharField(max_length=60, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        from integrations.engine.keys import domain_key, name_key

        self.name_key = name_key(self.name)
        self.domain = domain_key(self.domain) or self.domain
        if kwargs.get("update_fields") is not None and "name" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "name_key", "domain"}
        super().save(*args, **kwargs)


class Opportunity(models.Model):
    name = models.CharField(max_length=200)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="opportunities"
    )
    amount = models.DecimalField(**MONEY, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    stage = models.CharField(max_length=60, blank=True)
    close_date = models.DateField(null=True, blank=True)
    is_won = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.name


class Contract(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contracts")
    opportunity = models.ForeignKey(Opportunity, null=True, blank=True, on_delete=models.SET_NULL)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    billing_terms = models.CharField(max_length=60, blank=True)
    value = models.DecimalField(**MONEY, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")


class Project(models.Model):
    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="projects")
    opportunity = models.ForeignKey(Opportunity, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=30, default="active")
    billing_terms = models.CharField(max_length=60, blank=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    budget = models.DecimalField(**MONEY, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    rate_card = models.ForeignKey("RateCard", null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name}"


class Resource(models.Model):
    """A person who delivers work: from HR, known in PSA and ERP."""

    email = models.EmailField(unique=True, null=True, blank=True)
    employee_number = models.CharField(max_length=40, blank=True, db_index=True)
    first_name = models.CharField(max_length=80, blank=True)
    last_name = models.CharField(max_length=80, blank=True)
    department = models.CharField(max_length=80, blank=True)
    practice = models.CharField(max_length=80, blank=True)
    title = models.CharField(max_length=120, blank=True)
    location = models.CharField(max_length=80, blank=True)
    status = models.CharField(max_length=20, default="active")  # active | terminated
    hire_date = models.DateField(null=True, blank=True)
    termination_date = models.DateField(null=True, blank=True)
    weekly_capacity_hours = models.DecimalField(**HOURS, default=40)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name"]

    def __str__(self):
        return f"{self.first_name} {self.last_name}".strip() or (self.email or f"Resource {self.pk}")


class RateCard(models.Model):
    name = models.CharField(max_length=120, unique=True)
    currency = models.CharField(max_length=3, default="USD")
    is_default = models.BooleanField(default=False)

    def __str__(self):
        return self.name


class Rate(models.Model):
    """A bill or cost rate per hour, for a person or a rate-card role, valid between two dates."""

    class Kind(models.TextChoices):
        BILL = "bill", "Bill rate"
        COST = "cost", "Cost rate"

    kind = models.CharField(max_length=4, choices=Kind.choices)
    resource = models.ForeignKey(Resource, null=True, blank=True, on_delete=models.CASCADE, related_name="rates")
    rate_card = models.ForeignKey(RateCard, null=True, blank=True, on_delete=models.CASCADE, related_name="rates")
    role = models.CharField(max_length=120, blank=True)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="USD")
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["resource", "kind", "effective_from"])]


class TimeEntry(models.Model):
    # Indexed by the (resource, date) and (project, date) indexes below: a single-column index more would cost
    # every insert of a run without serving a query.
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="time_entries", db_index=False)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="time_entries", db_index=False)
    date = models.DateField()
    hours = models.DecimalField(**HOURS)
    billable = models.BooleanField(default=True)
    approved = models.BooleanField(default=False)
    notes = models.CharField(max_length=500, blank=True)
    bill_rate = models.DecimalField(**MONEY, null=True, blank=True)
    cost_rate = models.DecimalField(**MONEY, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    # The books it belongs to: time and expenses read from a Sandbox system are billed on Sandbox invoices only
    # and stay out of the dashboards.
    environment = models.CharField(max_length=10, choices=Environment.choices, default=Environment.PRODUCTION)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["project", "date"]), models.Index(fields=["resource", "date"])]

    @property
    def revenue(self):
        return (self.bill_rate or 0) * self.hours if self.billable else 0

    @property
    def cost(self):
        return (self.cost_rate or 0) * self.hours


class Expense(models.Model):
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="expenses")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="expenses")
    date = models.DateField()
    category = models.CharField(max_length=80, blank=True)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="USD")
    billable = models.BooleanField(default=True)
    reimbursable = models.BooleanField(default=False)
    notes = models.CharField(max_length=500, blank=True)
    # The books it belongs to: time and expenses read from a Sandbox system are billed on Sandbox invoices only
    # and stay out of the dashboards.
    environment = models.CharField(max_length=10, choices=Environment.choices, default=Environment.PRODUCTION)
    updated_at = models.DateTimeField(auto_now=True)


class Invoice(models.Model):
    """What the ERP bills a customer for one project and period, built from approved time and expenses."""

    number = models.CharField(max_length=60)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="invoices")
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3, default="USD")
    total = models.DecimalField(**MONEY, default=0)
    # Rebuilt from new time or expenses and not yet written to the ERP; survives a crash, so the
    # next slice or run writes it.
    needs_sync = models.BooleanField(default=True, db_index=True)
    # Counts the times new time or expenses marked it: a write clears needs_sync only if no mark came after the
    # rebuild it sent (a workspace's time and expenses runs mark and write the same invoices at once).
    marks = models.PositiveIntegerField(default=0)
    # A Sandbox ERP gets invoices of Sandbox time only, under the same numbers its Production twin would use.
    environment = models.CharField(max_length=10, choices=Environment.choices, default=Environment.PRODUCTION)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "period_start", "environment"], name="one_invoice_per_project_period_environment"
            ),
            models.UniqueConstraint(fields=["number", "environment"], name="one_invoice_number_per_environment"),
        ]


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(**HOURS, default=1)
    rate = models.DecimalField(**MONEY, default=0)
    amount = models.DecimalField(**MONEY)
    kind = models.CharField(max_length=10, default="time")  # time | expense


class ExternalRef(models.Model):
    """(connection, object, external id) <-> canonical record.

    One record per external id; one external id per record and system, except aliases: when a person
    says two records of one system are the same (a customer entered twice), the second is linked as an
    alias, so whatever points at it finds the record, and writes go to the first.
    """

    # Indexed by the unique constraint that leads with it.
    connection = models.ForeignKey(
        "integrations.Connection", on_delete=models.CASCADE, related_name="external_refs", db_index=False
    )
    object = models.CharField(max_length=60)
    external_id = models.CharField(max_length=200)
    entity = models.CharField(max_length=30)  # canonical entity name, e.g. "time_entry"
    record_id = models.BigIntegerField()
    alias = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "object", "external_id"], name="one_record_per_external_id"),
            models.UniqueConstraint(
                fields=["connection", "object", "entity", "record_id"],
                condition=models.Q(alias=False),
                name="one_external_id_per_record",
            ),
        ]
        indexes = [models.Index(fields=["entity", "record_id"])]


class FieldOwnership(models.Model):
    """Which kind of system owns a canonical field in this client (overrides the defaults in code)."""

    entity = models.CharField(max_length=30)
    field = models.CharField(max_length=60)
    owner = models.CharField(max_length=10)  # crm | erp | psa | hr | ticketing

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entity", "field"], name="one_owner_per_field")]
