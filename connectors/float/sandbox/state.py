"""The Float sandbox's account: clients, departments, people, projects and allocations seeded from the firm, and
its logged time computed from the firm's time entries by index."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.sandbox.firm import PRACTICES, SUPPORT_DEPARTMENTS

SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)
DEMO_CREDENTIALS = {
    "token": "float-sandbox-token-3e9b1c7a52d04f68",
    "app_name": "SysGenPro Connect",
    "contact_email": "integrations@sysgenpro-demo.example",
}
WRITABLE = {
    "people": {
        "name",
        "email",
        "job_title",
        "department",
        "employee_type",
        "start_date",
        "end_date",
        "active",
        "default_hourly_rate",
        "tags",
        "notes",
    },
    "clients": {"name"},
    "projects": {"name", "project_code", "client_id", "budget_total", "active", "notes", "tags"},
    "tasks": {"project_id", "people_id", "start_date", "end_date", "hours", "name", "notes"},
}
REQUIRED = {
    "people": ("name",),
    "clients": ("name",),
    "projects": ("name",),
    "tasks": ("project_id", "people_id", "start_date", "end_date", "hours"),
}


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Refused(Exception):
    """A write Float refuses: answered 422 with [{field, message}]."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.errors = [{"field": field, "message": message}]


class FloatState:
    def reset_state(self) -> None:
        firm = self.firm
        self.tables: dict[str, dict[int, dict[str, Any]]] = {"clients": {}, "people": {}, "projects": {}, "tasks": {}}
        self.departments = {
            n: {"department_id": n, "name": name} for n, name in enumerate((*PRACTICES, *SUPPORT_DEPARTMENTS), 1)
        }
        self.next_ids = {"clients": 1, "people": 1, "projects": 1, "tasks": 1}
        self.logged_count = firm.time_entry_count
        minute = 0

        def at() -> str:
            nonlocal minute
            minute += 1
            return stamp(SEED_EPOCH + timedelta(minutes=minute))

        for customer in firm.customers():
            self._put("clients", {"client_id": customer["id"], "name": customer["name"]}, at())
        department_of = {d["name"]: d for d in self.departments.values()}
        for person in firm.people():
            self._put(
                "people",
                {
                    "people_id": person["id"],
                    "name": person["display_name"],
                    "email": person["work_email"],
                    "job_title": person["job_title"],
                    "department": dict(department_of[person["department"]]),
                    "employee_type": 1,
                    "start_date": person["hire_date"],
                    "end_date": person["termination_date"],
                    "active": 1 if person["status"] == "Active" else 0,
                    "default_hourly_rate": person["bill_rate"],
                    "tags": [],
                },
                at(),
            )
        for project in firm.psa_projects():
            self._put(
                "projects",
                {
                    "project_id": project["id"],
                    "name": project["name"],
                    "project_code": project["code"],
                    "client_id": project["customer_id"],
                    "budget_total": project["budget"],
                    "active": 1,
                    "notes": "",
                },
                at(),
            )
        for task_id, (person, project) in enumerate(firm.bookings(), start=1):
            self._put(
                "tasks",
                {
                    "task_id": task_id,
                    "project_id": project["id"],
                    "people_id": person["id"],
                    "start_date": project["start_date"],
                    "end_date": project["end_date"],
                    "hours": 4.0,
                    "name": "Delivery",
                    "notes": "",
                },
                at(),
            )

    def _put(self, table: str, row: dict[str, Any], modified: str) -> dict[str, Any]:
        id_field = {"clients": "client_id", "people": "people_id", "projects": "project_id", "tasks": "task_id"}[table]
        if row.get(id_field) is None:
            row[id_field] = self.next_ids[table]
        self.next_ids[table] = max(self.next_ids[table], int(row[id_field]) + 1)
        row["modified"] = modified
        row.setdefault("created", modified)
        self.tables[table][int(row[id_field])] = row
        return row

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        unknown = set(volumes) - {"logged_time"}
        if unknown:
            raise ValueError(f"the float sandbox seeds logged_time, not {sorted(unknown)}")
        self.logged_count = int(volumes.get("logged_time", self.logged_count))
        return {"logged_time": self.logged_count}

    # -- logged time, computed from the firm's time entries --------------------------------------------------------
    def logged_time(self, index: int) -> dict[str, Any]:
        entry = self.firm.time_entry(index)
        return {
            "logged_time_id": f"{index + 1:08x}",  # Float's logged time ids are strings
            "people_id": entry["person_id"],
            "project_id": entry["project_id"],
            "phase_id": 0,
            "task_id": None,
            "date": entry["date"],
            "hours": float((Decimal(entry["minutes"]) / 60).quantize(Decimal("0.01"))),
            "billable": 1 if entry["billable"] else 0,
            "notes": entry["notes"],
            "locked": 1 if entry["approved"] else 0,
            "locked_date": entry["date"] if entry["approved"] else None,
            "created": entry["created_at"],
            "modified": entry["updated_at"],
        }

    def logged_since(self, since: str | None) -> int:
        """The first index of logged time modified at or after `since` (stamps grow with the index)."""
        if not since:
            return 0
        return bisect.bisect_left(range(self.logged_count), since, key=lambda i: self.firm.time_entry(i)["updated_at"])

    # -- writes ----------------------------------------------------------------------------------------------------
    def write(self, table: str, values: dict[str, Any], row_id: int | None) -> dict[str, Any]:
        unknown = set(values) - WRITABLE[table]
        if unknown:
            raise Refused(sorted(unknown)[0], f"{sorted(unknown)[0]} is not a field of {table}.")
        current = self.tables[table].get(row_id) if row_id is not None else None
        merged = {**(current or {}), **values}
        for name in REQUIRED[table]:
            if merged.get(name) in (None, ""):
                raise Refused(name, f"{name.replace('_', ' ').capitalize()} cannot be blank.")
        if table == "people" and merged.get("email"):
            for other in self.tables["people"].values():
                if other is not current and str(other.get("email") or "").lower() == str(merged["email"]).lower():
                    raise Refused("email", f'Email "{merged["email"]}" has already been taken.')
        if table == "people" and isinstance(merged.get("department"), dict):
            name = merged["department"].get("name")
            found = next((d for d in self.departments.values() if d["name"] == name), None)
            if found is None:
                found = {"department_id": len(self.departments) + 1, "name": name}
                self.departments[found["department_id"]] = found
            merged["department"] = dict(found)
        if table == "projects" and merged.get("client_id") and int(merged["client_id"]) not in self.tables["clients"]:
            raise Refused("client_id", "Client is invalid.")
        if table == "tasks":
            if int(merged["project_id"]) not in self.tables["projects"]:
                raise Refused("project_id", "Project is invalid.")
            if int(merged["people_id"]) not in self.tables["people"]:
                raise Refused("people_id", "Person is invalid.")
        if current is not None and all(current.get(k) == v for k, v in values.items()):
            return current
        return self._put(table, merged, stamp(datetime.now(UTC)))
