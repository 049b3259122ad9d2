"""The ServiceNow sandbox's instance: users, assignment groups (one per support queue, named with its project's
code first), incidents (one per ticket) and task_time_worked records (one per work log), as Table API rows.

Every value is text, as the Table API gives it; references hold the referenced row's sys_id; dates are
"YYYY-MM-DD HH:MM:SS" in UTC and durations "1970-01-01 HH:MM:SS".
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.sandbox.tickets import support_queues, support_tickets, work_logs

DEMO_CREDENTIALS = {"username": "integration.sync", "password": "Snow-Sandbox-2024!kq7"}
STAMP = "%Y-%m-%d %H:%M:%S"
TABLES = ("sys_user", "sys_user_group", "incident", "task_time_worked")


def sys_id(*parts: object) -> str:
    """A 32-character hex sys_id derived from what the row is, so every reset gives the same ids."""
    return hashlib.md5(":".join(str(p) for p in parts).encode()).hexdigest()  # noqa: S324 -- an id, not security


def glide_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP)


def duration(seconds: int) -> str:
    """A glide_duration as the Table API shows its value: time after the epoch, "1970-01-01 01:30:00"."""
    return (datetime(1970, 1, 1) + timedelta(seconds=seconds)).strftime(STAMP)


def _utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)


class ServiceNowState:
    """The instance's rows by table and sys_id; `self.lock` guards them."""

    def reset_state(self) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in TABLES}
        epoch = "2022-06-01 08:00:00"
        me = sys_id("sys_user", DEMO_CREDENTIALS["username"])
        self._put("sys_user", {"sys_id": me, "user_name": DEMO_CREDENTIALS["username"], "name": "Integration Sync",
                               "email": "integration@haldenrowe.example", "active": "true",
                               "sys_created_on": epoch, "sys_updated_on": epoch})  # fmt: skip
        self.user_by_email: dict[str, str] = {}
        for person in self.firm.people():
            if not person["work_email"]:
                continue
            row_id = sys_id("sys_user", person["work_email"])
            self.user_by_email[person["work_email"]] = row_id
            self._put(
                "sys_user",
                {
                    "sys_id": row_id,
                    "user_name": person["work_email"].split("@")[0],
                    "name": person["display_name"],
                    "email": person["work_email"],
                    "active": "true" if person["status"] == "Active" else "false",
                    "sys_created_on": epoch,
                    "sys_updated_on": epoch,
                },
            )
        groups = {}
        for queue in support_queues(self.firm):
            groups[queue["id"]] = sys_id("sys_user_group", queue["id"])
            self._put("sys_user_group", {"sys_id": groups[queue["id"]], "name": queue["name"], "active": "true",
                                         "sys_created_on": epoch, "sys_updated_on": epoch})  # fmt: skip
        incidents = {}
        for ticket in support_tickets(self.firm):
            incidents[ticket["id"]] = sys_id("incident", ticket["id"])
            opened = glide_stamp(_utc(ticket["opened_at"]))
            self._put(
                "incident",
                {
                    "sys_id": incidents[ticket["id"]],
                    "number": f"INC{10000 + ticket['id']:07d}",
                    "short_description": ticket["title"],
                    "assignment_group": groups[ticket["queue_id"]],
                    "assigned_to": self.user_by_email.get(ticket["assignee_email"], ""),
                    "state": "2",
                    "sys_created_on": opened,
                    "sys_updated_on": opened,
                },
            )
        for log in work_logs(self.firm):
            self._put(
                "task_time_worked",
                {
                    "sys_id": sys_id("task_time_worked", log["id"]),
                    "task": incidents[log["ticket_id"]],
                    "user": self.user_by_email[log["person_email"]],
                    "time_worked": duration(log["minutes"] * 60),
                    "time_in_seconds": str(log["minutes"] * 60),
                    "work_date": log["date"],
                    "comments": log["notes"],
                    "sys_created_on": glide_stamp(_utc(log["created_at"])),
                    "sys_updated_on": glide_stamp(_utc(log["updated_at"])),
                },
            )

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        unknown = set(volumes) - {"task_time_worked"}
        if unknown:
            raise ValueError(f"the servicenow sandbox seeds only task_time_worked, not {sorted(unknown)}")
        rows = self.tables["task_time_worked"]
        task = next(iter(self.tables["incident"]))
        users = [u for u in self.tables["sys_user"] if u != sys_id("sys_user", DEMO_CREDENTIALS["username"])]
        start = datetime(2024, 2, 1, 8, 0, tzinfo=UTC)
        while len(rows) < volumes.get("task_time_worked", 0):
            n = len(rows)
            # Three rows a second: a timestamp alone cannot say where a page ended.
            stamp = glide_stamp(start + timedelta(seconds=n // 3))
            self._put("task_time_worked", {"sys_id": sys_id("seeded", n), "task": task, "user": users[n % len(users)],
                                           "time_worked": duration(900), "time_in_seconds": "900",
                                           "work_date": "2024-02-01", "comments": "Seeded",
                                           "sys_created_on": stamp, "sys_updated_on": stamp})  # fmt: skip
        return {"task_time_worked": len(rows)}

    def _put(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        self.tables[table][row["sys_id"]] = row
        return row

    def insert(self, table: str, values: dict[str, Any]) -> dict[str, Any]:
        now = glide_stamp(datetime.now(UTC))
        row = {name: "" if value is None else str(value) for name, value in values.items()}
        row.update(sys_id=sys_id(table, "new", len(self.tables[table]), now), sys_created_on=now, sys_updated_on=now)
        if table == "task_time_worked" and row.get("time_in_seconds") and not row.get("time_worked"):
            row["time_worked"] = duration(int(row["time_in_seconds"]))
        return self._put(table, row)

    def update(self, table: str, row_id: str, values: dict[str, Any]) -> dict[str, Any] | None:
        row = self.tables[table].get(row_id)
        if row is None:
            return None
        row.update({name: "" if value is None else str(value) for name, value in values.items() if name != "sys_id"})
        row["sys_updated_on"] = glide_stamp(datetime.now(UTC))
        return row
