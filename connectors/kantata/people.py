"""Kantata's people: resources matched by email through their account memberships, and cost rates kept one per
membership and currency."""

from __future__ import annotations

from connectors.base import (
    OutboundRecord,
    WriteMode,
    WriteResult,
)
from connectors.kantata.records import (
    COST_RATE_FIELDS,
    MAX_PER_PAGE,
    USER_FIELDS,
    same,
)


class PeopleWrites:
    """The writes of users and cost rates, for KantataConnector: they use its calls (`_send`, `_get`, `_check`)
    and its reading of cost rates."""

    # -- resources (users) ------------------------------------------------------------------------------------

    def _memberships_by_email(self) -> dict[str, tuple[dict, dict]]:
        found: dict[str, tuple[dict, dict]] = {}
        page_number = 1
        while True:
            body = self._get("/account_memberships", {"include": "user", "per_page": MAX_PER_PAGE, "page": page_number})
            users = body.get("users") or {}
            for membership in (body.get("account_memberships") or {}).values():
                user = users.get(str(membership.get("user_id")))
                if user and user.get("email_address"):
                    found[user["email_address"].strip().lower()] = (membership, user)
            meta = body.get("meta") or {}
            if int(meta.get("page_number", page_number)) >= int(meta.get("page_count", 0)):
                return found
            page_number += 1

    def _write_resources(self, records: list[OutboundRecord], mode: WriteMode) -> list[WriteResult]:
        """Resources are matched by email: the one key HR, PSA and ERP share for a person."""
        members = self._memberships_by_email()
        membership_fields = ("bill_rate_in_cents", "cost_rate_in_cents", "permission")
        results = []
        for record in records:
            email = str(record.fields.get("email_address") or "").strip().lower()
            found = members.get(email)
            if found is None:
                if mode == "update":
                    results.append(
                        WriteResult(record.external_id, "failed", None, "not_found", f"No Kantata user {email}")
                    )
                    continue
                invitation = {k: v for k, v in record.fields.items() if k in USER_FIELDS}
                invitation.setdefault("permission", "collaborator")
                response = self._send(
                    "POST", "/account_invitations", json={"account_invitation": dict(invitation, email_address=email)}
                )
                if response.status_code in (400, 422):
                    results.append(self._failure(record, self._errors(response), response.status_code))
                    continue
                body = self._check(response)
                invited = next(iter((body.get("account_invitations") or {}).values()), {})
                results.append(WriteResult(record.external_id, "created", invited.get("invitee_id")))
                continue
            membership, user = found
            if mode == "create":
                results.append(
                    WriteResult(
                        record.external_id, "failed", user["id"], "duplicate", f"{email} is already a Kantata user"
                    )
                )
                continue
            changes = {
                k: v for k, v in record.fields.items() if k in membership_fields and not same(membership.get(k), v)
            }
            if not changes:
                results.append(WriteResult(record.external_id, "unchanged", user["id"]))
                continue
            response = self._send(
                "PUT", f"/account_memberships/{membership['id']}", json={"account_membership": changes}
            )
            if response.status_code in (400, 404, 422):
                results.append(self._failure(record, self._errors(response), response.status_code))
                continue
            self._check(response)
            results.append(WriteResult(record.external_id, "updated", user["id"]))
        return results

    # -- cost rates -------------------------------------------------------------------------------------------

    def _write_cost_rates(self, records: list[OutboundRecord], mode: WriteMode) -> list[WriteResult]:
        """Kantata keeps one cost rate per account membership and currency, and POST overrides it."""
        current: dict[tuple[str, str], dict] = {}
        for page in self.read("cost_rates"):
            for rate in page.records:
                current[(str(rate.data["account_membership_id"]), str(rate.data["currency"]).upper())] = dict(rate.data)
        results: dict[int, WriteResult] = {}
        to_send: list[int] = []
        for i, record in enumerate(records):
            rate_key = (str(record.fields.get("account_membership_id")), str(record.fields.get("currency", "")).upper())
            existing = current.get(rate_key)
            if existing is not None and same(
                existing.get("amount_in_subunits"), record.fields.get("amount_in_subunits")
            ):
                results[i] = WriteResult(record.external_id, "unchanged", str(existing["id"]))
            elif existing is not None and mode == "create":
                results[i] = WriteResult(
                    record.external_id, "failed", str(existing["id"]), "duplicate", "The rate exists"
                )
            elif existing is None and mode == "update":
                results[i] = WriteResult(record.external_id, "failed", None, "not_found", "No such cost rate to update")
            else:
                to_send.append(i)

        def attempt(indexes: list[int]) -> None:
            payload = [{k: records[i].fields.get(k) for k in COST_RATE_FIELDS} for i in indexes]
            response = self._send("POST", "/cost_rates", json={"cost_rates": payload})
            if response.status_code in (400, 422):
                if len(indexes) == 1:
                    results[indexes[0]] = self._failure(
                        records[indexes[0]], self._errors(response), response.status_code
                    )
                    return
                middle = len(indexes) // 2
                attempt(indexes[:middle])
                attempt(indexes[middle:])
                return
            body = self._check(response)
            written = {
                (str(r["account_membership_id"]), str(r["currency"]).upper()): r
                for r in (body.get("cost_rates") or {}).values()
            }
            for i in indexes:
                rate_key = (
                    str(records[i].fields.get("account_membership_id")),
                    str(records[i].fields.get("currency")).upper(),
                )
                rate = written.get(rate_key)
                outcome = "updated" if rate_key in current else "created"
                if rate is None:
                    results[i] = WriteResult(
                        records[i].external_id, "failed", None, "not_confirmed", "No rate returned"
                    )
                else:
                    results[i] = WriteResult(records[i].external_id, outcome, str(rate["id"]))

        if to_send:
            attempt(to_send)
        return [results[i] for i in range(len(records))]
