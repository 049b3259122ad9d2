"""The monday.com sandbox's account: users, a board per support queue, an item per ticket, and each work log as a
session in the item's time tracking history.

Seeded from the firm's ticket work (connectors/sandbox/tickets.py): a board is named after its queue, with the
project's code first ("PRJ-113 Globex Data Platform"), and has a "Project code" text column holding that code too.
Ids are numbers as text, as monday's are; each kind has its own range so an id says what it names.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.monday.sandbox.schema import BUDGET_PER_MINUTE
from connectors.sandbox.tickets import support_queues, support_tickets, work_logs

DEMO_CREDENTIALS = {
    "api_token": "eyJhbGciOiJIUzI1NiJ9.eyJ0aWQiOjQxMDAwMDAwMSwiYWFpIjoxMSwidWlkIjo1MTAwMDAwOSwiaWFkIjoiMjAyNC0wMS0wMlQwOTowMDowMC4wMDBaIiwicGVyIjoibWU6d3JpdGUiLCJhY3RpZCI6OTEwMDAwMSwicmduIjoiZXVjMSJ9.sandbox-signature-2c7e9a41",  # noqa: E501
    "board_ids": "",
}
# A guest's token: it signs in, but may not read boards (monday answers UserUnauthorizedException inside HTTP 200).
VIEWER_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOjUxMDAwMDA4LCJwZXIiOiJtZTpyZWFkIn0.sandbox-viewer-5b1f"  # noqa: S105
ACCOUNT = {"id": "9100001", "name": "Halden & Rowe", "slug": "haldenrowe"}
ME_ID = "51000009"
VIEWER_ID = "51000008"
ME_EMAIL = "integration@haldenrowe.example"
USER_BASE = 52000000
BOARD_BASE = 4100000000
ITEM_BASE = 6100000000
SESSION_BASE = 7100000000
VOLUME_BOARD = str(BOARD_BASE + 900)
SESSIONS_PER_VOLUME_ITEM = 20
SEED_EPOCH = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
TIME_COLUMN = "time_tracking"
CODE_COLUMN = "project_code"
COLUMNS = (
    {"id": "name", "title": "Name", "type": "name", "settings_str": "{}"},
    {"id": "person", "title": "Assignee", "type": "people", "settings_str": "{}"},
    {"id": "status", "title": "Status", "type": "status",
     "settings_str": json.dumps({"labels": {"0": "Working on it", "1": "Done", "5": "New"}})},
    {"id": CODE_COLUMN, "title": "Project code", "type": "text", "settings_str": "{}"},
    {"id": TIME_COLUMN, "title": "Time tracking", "type": "time_tracking", "settings_str": "{}"},
)  # fmt: skip


def stamp(moment: datetime) -> str:
    """monday's dates: ISO 8601 in UTC to the second, "2024-01-03T09:00:00Z"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class MondayState:
    """The account's boards, items and time tracking; `self.lock` guards them, and the complexity budget."""

    def reset_state(self) -> None:
        self.users: dict[str, dict[str, Any]] = {
            ME_ID: {"id": ME_ID, "name": "Integration (API)", "email": ME_EMAIL, "is_guest": False},
            VIEWER_ID: {"id": VIEWER_ID, "name": "Guest viewer", "email": "guest@haldenrowe.example", "is_guest": True},
        }
        by_email = {ME_EMAIL: ME_ID}
        for person in self.firm.people():
            if person["work_email"]:
                user_id = str(USER_BASE + person["id"])
                self.users[user_id] = {"id": user_id, "name": person["display_name"], "email": person["work_email"],
                                       "is_guest": False}  # fmt: skip
                by_email[person["work_email"]] = user_id
        self.boards: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        for queue in support_queues(self.firm):
            board_id = str(BOARD_BASE + queue["id"])
            self.boards[board_id] = {"id": board_id, "name": queue["name"], "code": queue["code"],
                                     "updated_at": stamp(SEED_EPOCH)}  # fmt: skip
        for ticket in support_tickets(self.firm):
            item_id = str(ITEM_BASE + ticket["id"])
            self.items[item_id] = {
                "id": item_id,
                "board": str(BOARD_BASE + ticket["queue_id"]),
                "name": ticket["title"],
                "assignee": by_email.get(ticket["assignee_email"]),
                "created_at": ticket["opened_at"],
                "updated_at": ticket["opened_at"],
                "creator": ME_ID,
                "sessions": [],
            }
        for log in work_logs(self.firm):
            item = self.items[str(ITEM_BASE + log["ticket_id"])]
            started = datetime.fromisoformat(log["date"]).replace(hour=9, tzinfo=UTC) + timedelta(minutes=log["id"])
            user = by_email[log["person_email"]]
            item["sessions"].append(
                {
                    "id": str(SESSION_BASE + log["id"]),
                    "status": "active",
                    "started_at": stamp(started),
                    "ended_at": stamp(started + timedelta(minutes=log["minutes"])),
                    "started_user_id": user,
                    "ended_user_id": user,
                    "created_at": log["created_at"],
                    "updated_at": log["updated_at"],
                    # Logged after the fact, with the day and times typed in.
                    "manually_entered_start_date": True,
                    "manually_entered_start_time": True,
                    "manually_entered_end_date": True,
                    "manually_entered_end_time": True,
                }
            )
            # Logging or correcting time changes the item (see the client's assumptions).
            item["updated_at"] = max(item["updated_at"], log["updated_at"])
        self._next_session = SESSION_BASE + 500000
        # The account's complexity budget: points a minute, spent by every query; tests shrink both.
        self.budget_limit = BUDGET_PER_MINUTE
        self.budget_window = 60.0
        self.budget_spent = 0
        self.budget_started = time.monotonic()
        self.complexity_refused = 0
        self.query_costs: list[int] = []  # what each query answered cost, for tests

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        unknown = set(volumes) - {"time_tracking_sessions"}
        if unknown:
            raise ValueError(f"the monday sandbox seeds only time_tracking_sessions, not {sorted(unknown)}")
        wanted = volumes.get("time_tracking_sessions", 0)
        if wanted and VOLUME_BOARD not in self.boards:
            self.boards[VOLUME_BOARD] = {"id": VOLUME_BOARD, "name": "Volume test", "code": "",
                                         "updated_at": stamp(SEED_EPOCH)}  # fmt: skip
        people = [user for user in self.users if user not in (ME_ID, VIEWER_ID)]
        count = self.session_count()
        item = None
        while count < wanted:
            if item is None or len(item["sessions"]) >= SESSIONS_PER_VOLUME_ITEM:
                item_id = str(ITEM_BASE + 900000 + len(self.items))
                created = stamp(SEED_EPOCH + timedelta(seconds=len(self.items)))
                item = self.items[item_id] = {"id": item_id, "board": VOLUME_BOARD, "name": f"Seeded work {item_id}",
                                              "assignee": None, "created_at": created, "updated_at": created,
                                              "creator": ME_ID, "sessions": []}  # fmt: skip
            self._next_session += 1
            started = SEED_EPOCH + timedelta(days=count % 60, minutes=count % 480)
            user = people[count % len(people)]
            item["sessions"].append({
                "id": str(self._next_session), "status": "active", "started_at": stamp(started),
                "ended_at": stamp(started + timedelta(minutes=15 + count % 120)), "started_user_id": user,
                "ended_user_id": user, "created_at": item["created_at"], "updated_at": item["created_at"],
                "manually_entered_start_date": False, "manually_entered_start_time": False,
                "manually_entered_end_date": False, "manually_entered_end_time": False,
            })  # fmt: skip
            count += 1
        return {"time_tracking_sessions": self.session_count()}

    def session_count(self) -> int:
        return sum(len(item["sessions"]) for item in self.items.values())

    # -- the complexity budget -----------------------------------------------------------------------------------
    def budget_left(self, now: float) -> int:
        if now - self.budget_started >= self.budget_window:
            self.budget_started, self.budget_spent = now, 0
        return self.budget_limit - self.budget_spent

    # -- writes (time tracked in the sandbox, as a person stopping a timer would) --------------------------------
    def log_session(self, item_id: str, *, user_email: str, started: datetime, minutes: int) -> dict[str, Any]:
        """A person tracks time on an item (the API cannot write time tracking: it happens in monday's UI)."""
        with self.lock:
            item = self.items[item_id]
            user = next(u for u, found in self.users.items() if found["email"] == user_email)
            now = stamp(datetime.now(UTC))
            self._next_session += 1
            session = {
                "id": str(self._next_session), "status": "active", "started_at": stamp(started),
                "ended_at": stamp(started + timedelta(minutes=minutes)), "started_user_id": user,
                "ended_user_id": user, "created_at": now, "updated_at": now,
                "manually_entered_start_date": False, "manually_entered_start_time": False,
                "manually_entered_end_date": False, "manually_entered_end_time": False,
            }  # fmt: skip
            item["sessions"].append(session)
            item["updated_at"] = now
            return session
