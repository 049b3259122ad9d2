"""Fields on a CRM's account record that an integration keeps up to date (delivery health written back to the CRM).

A CRM connector that offers them (Salesforce, HubSpot, Dynamics 365) implements `AccountFields`: list the account's
fields, create the custom ones missing, read some fields of some accounts, and update accounts in the vendor's batch
form. Nothing here knows Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, Protocol

from connectors.base import WriteResult

FieldKind = Literal["number", "text"]
CENT = Decimal("0.01")


@dataclass(frozen=True)
class AccountField:
    """A field of the CRM's account object: one the integration wants (`name` in the vendor's spelling), or one the
    CRM describes."""

    name: str
    label: str
    kind: FieldKind
    description: str = ""
    custom: bool = True


@dataclass(frozen=True)
class AccountUpdate:
    """New values for some fields of one account, by the CRM's own account id."""

    account_id: str
    values: dict[str, Any] = field(default_factory=dict)  # field name -> Decimal, str or None


class AccountFields(Protocol):
    def account_field_name(self, key: str) -> str:
        """The name the vendor's conventions give a custom field for `key` ("delivery_hours_last_month")."""

    def account_fields(self) -> dict[str, AccountField]:
        """Every field of the account object the integration user may update, by name."""

    def account_fields_create(self, fields: list[AccountField]) -> list[str]:
        """Create the custom fields of `fields` the account object lacks; the names created."""

    def accounts_read(self, account_ids: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
        """The values of `names` on the accounts that exist among `account_ids`, by account id."""

    def accounts_update(self, updates: list[AccountUpdate]) -> list[WriteResult]:
        """Write each update, in the vendor's batches; one result per update, in order (external_id = account id)."""


def words(key: str) -> list[str]:
    """A field key's words: "delivery_hours_last_month" -> ["delivery", "hours", "last", "month"]."""
    return [part for part in re.split(r"[^A-Za-z0-9]+", key) if part]


def number_value(value: Any) -> Decimal | None:
    """A number as the CRMs hand it back (float, string, int) to the cent, for comparing with what we would write."""
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except ArithmeticError:
        return None
