"""The Asana sandbox's workspace: users, projects (one per support queue), tasks and time tracking entries.

Seeded from the firm's ticket work (connectors/sandbox/tickets.py): a project per support queue, named with its
project code first, a task per ticket and a time tracking entry per work log. Gids are numbers as text, as Asana's
are; each kind of object has its own range so a gid says what it names.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.base import iso_utc_millis
from connectors.sandbox.tickets import support_queues, support_tickets, work_logs

DEMO_CREDENTIALS = {
    "access_token": "2/1201000000000009/1209876543210:7f3c0a9e5b1d4f2a8c6e0b9d7a5f3e1c",
    "workspace": "",
}
WORKSPACE_GID = "1201000000000001"
WORKSPACE_NAME = "Halden & Rowe"
ME_GID = "1201000000000009"
ME_EMAIL = "integration@haldenrowe.example"
USER_BASE = 1202000000000000
PROJECT_BASE = 1203000000000000
TASK_BASE = 1204000000000000
ENTRY_BASE = 1205000000000000
# The project that /_sandbox/seed fills with time tracking entries for volume tests.
VOLUME_PROJECT_GID = str(PROJECT_BASE + 900)
VOLUME_TASK_GID = str(TASK_BASE + 900000)
SEED_EPOCH = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


class AsanaError(Exception):
    """An answer in Asana's error shape: {"errors": [{"message", "help"?, "phrase"?}]}."""

    def __init__(self, status: int, message: str, help_text: str = ""):
        super().__init__(message)
        self.status, self.message, self.help = status, message, help_text

    def body(self) -> dict[str, Any]:
        error = {"message": self.message}
        if self.help:
            error["help"] = self.help
        return {"errors": [error]}


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)


class AsanaState:
    """The workspace's objects and their writes; `self.lock` guards them."""

    def reset_state(self) -> None:
        self.users: dict[str, dict[str, Any]] = {
            ME_GID: {"gid": ME_GID, "name": "Integration (API)", "email": ME_EMAIL},
        }
        self.user_by_email: dict[str, str] = {ME_EMAIL: ME_GID}
        for person in self.firm.people():
            if not person["work_email"]:
                continue
            gid = str(USER_BASE + person["id"])
            self.users[gid] = {"gid": gid, "name": person["display_name"], "email": person["work_email"]}
            self.user_by_email[person["work_email"]] = gid
        self.projects: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        self._next_entry = ENTRY_BASE + 500000
        for queue in support_queues(self.firm):
            gid = str(PROJECT_BASE + queue["id"])
            self.projects[gid] = {
                "gid": gid,
                "name": queue["name"],
                "archived": False,
                "owner": self.user_by_email.get(queue["manager_email"]),
                "created_at": iso_utc_millis(SEED_EPOCH - timedelta(days=400)),
                "modified_at": iso_utc_millis(SEED_EPOCH - timedelta(days=400)),
            }
        for ticket in support_tickets(self.firm):
            gid = str(TASK_BASE + ticket["id"])
            self.tasks[gid] = {
                "gid": gid,
                "name": ticket["title"],
                "projects": [str(PROJECT_BASE + ticket["queue_id"])],
                "assignee": self.user_by_email.get(ticket["assignee_email"]),
                "completed": False,
                "created_at": ticket["opened_at"].replace("Z", ".000Z"),
                "modified_at": ticket["opened_at"].replace("Z", ".000Z"),
            }
        for log in work_logs(self.firm):
            gid = str(ENTRY_BASE + log["id"])
            task = self.tasks[str(TASK_BASE + log["ticket_id"])]
            self.entries[gid] = {
                "gid": gid,
                "task": task["gid"],
                "duration_minutes": log["minutes"],
                "entered_on": log["date"],
                "created_by": self.user_by_email[log["person_email"]],
                "attributable_to": task["projects"][0],
                "created_at": log["created_at"].replace("Z", ".000Z"),
            }
            # Logging or correcting time on a task modifies the task (see the client's assumptions).
            task["modified_at"] = max(task["modified_at"], log["updated_at"].replace("Z", ".000Z"))

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        unknown = set(volumes) - {"time_tracking_entries"}
        if unknown:
            raise ValueError(f"the asana sandbox seeds only time_tracking_entries, not {sorted(unknown)}")
        wanted = volumes.get("time_tracking_entries", 0)
        if wanted and VOLUME_PROJECT_GID not in self.projects:
            created = iso_utc_millis(SEED_EPOCH)
            self.projects[VOLUME_PROJECT_GID] = {
                "gid": VOLUME_PROJECT_GID,
                "name": "Volume test",
                "archived": False,
                "owner": ME_GID,
                "created_at": created,
                "modified_at": created,
            }
            self.tasks[VOLUME_TASK_GID] = {
                "gid": VOLUME_TASK_GID,
                "name": "Seeded time",
                "projects": [VOLUME_PROJECT_GID],
                "assignee": ME_GID,
                "completed": False,
                "created_at": created,
                "modified_at": created,
            }
        people = [gid for gid in self.users if gid != ME_GID]
        day = date(2024, 3, 1)
        while len(self.entries) < wanted:
            self._next_entry += 1
            gid = str(self._next_entry)
            self.entries[gid] = {
                "gid": gid,
                "task": VOLUME_TASK_GID,
                "duration_minutes": 15 + len(self.entries) % 120,
                "entered_on": (day + timedelta(days=len(self.entries) % 60)).isoformat(),
                "created_by": people[len(self.entries) % len(people)],
                "attributable_to": VOLUME_PROJECT_GID,
                "created_at": iso_utc_millis(SEED_EPOCH),
            }
        return {"time_tracking_entries": len(self.entries)}

    # -- writes ------------------------------------------------------------------------------------------------
    def entry_create(self, task_gid: str, body: Any) -> dict[str, Any]:
        task = self.tasks.get(task_gid)
        if task is None:
            raise AsanaError(404, f"task: Unknown object: {task_gid}")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise AsanaError(400, "data: Missing input")
        minutes = data.get("duration_minutes")
        if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
            raise AsanaError(400, "duration_minutes: Must be greater than 0")
        entered_on = data.get("entered_on") or datetime.now(UTC).date().isoformat()
        try:
            date.fromisoformat(str(entered_on))
        except ValueError:
            raise AsanaError(400, f"entered_on: Invalid date: {entered_on}") from None
        now = iso_utc_millis(datetime.now(UTC))
        self._next_entry += 1
        gid = str(self._next_entry)
        # created_by is read-only: an entry belongs to whoever's token created it.
        self.entries[gid] = {
            "gid": gid,
            "task": task_gid,
            "duration_minutes": minutes,
            "entered_on": str(entered_on),
            "created_by": ME_GID,
            "attributable_to": data.get("attributable_to") or task["projects"][0],
            "created_at": now,
        }
        task["modified_at"] = now
        return self.entries[gid]

    def entry_update(self, gid: str, body: Any) -> dict[str, Any]:
        entry = self.entries.get(gid)
        if entry is None:
            raise AsanaError(404, f"time_tracking_entry: Unknown object: {gid}")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise AsanaError(400, "data: Missing input")
        if "duration_minutes" in data:
            minutes = data["duration_minutes"]
            if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
                raise AsanaError(400, "duration_minutes: Must be greater than 0")
            entry["duration_minutes"] = minutes
        if "entered_on" in data:
            try:
                entry["entered_on"] = date.fromisoformat(str(data["entered_on"])).isoformat()
            except ValueError:
                raise AsanaError(400, f"entered_on: Invalid date: {data['entered_on']}") from None
        self.tasks[entry["task"]]["modified_at"] = iso_utc_millis(datetime.now(UTC))
        return entry

    def tasks_of(self, project_gid: str, modified_since: str | None) -> list[dict[str, Any]]:
        since = _parse(modified_since) if modified_since else None
        found = [
            task
            for task in self.tasks.values()
            if project_gid in task["projects"] and (since is None or _parse(task["modified_at"]) >= since)
        ]
        return sorted(found, key=lambda task: int(task["gid"]))

    def entries_of(self, task_gid: str) -> list[dict[str, Any]]:
        return sorted((e for e in self.entries.values() if e["task"] == task_gid), key=lambda e: int(e["gid"]))

    # -- test helpers --------------------------------------------------------------------------------------------
    def entry_count(self) -> int:
        with self.lock:
            return len(self.entries)
