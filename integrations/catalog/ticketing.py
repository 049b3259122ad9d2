"""How each ticketing system takes staffing requests and gives the time logged on tickets."""

from __future__ import annotations

from integrations.catalog.roles import TicketingProfile, Write, reference_flow, ticket_time_rules
from integrations.catalog.specs import FIRST_WORD, TRIM, UPPER, default

TICKETING: dict[str, TicketingProfile] = {
    "jira": TicketingProfile(
        requests=reference_flow(
            "ticketing-requests",
            "Staffing requests (reference)",
            "ticketing",
            "issues",
            "project",
            [
                # Staffing requests carry their project's code as a label, and "Staff <code>: <name>" as summary.
                ("project.code", ["labels.0"], [TRIM, UPPER], True, "Project code"),
                (
                    "project.name",
                    ["summary"],
                    [{"name": "split", "separator": ": ", "index": 1, "rest": True}],
                    True,
                    "Project name",
                ),
            ],
            source_filter={"path": "labels", "contains": "staffing"},
        ),
        request=Write(
            "issues",
            [
                ("project", [], [default("RES")], True, "Jira project"),
                ("issuetype", [], [default("Task")], True, "Issue type"),
                (
                    "summary",
                    ["code", "name"],
                    [{"name": "concat", "separator": ": "}, {"name": "prefix", "value": "Staff "}],
                    True,
                    "Summary",
                ),
                (
                    "description",
                    ["customer.name"],
                    [{"name": "prefix", "value": "Won deal for "}],
                    False,
                    "Description",
                ),
                ("labels", ["code"], [{"name": "list", "append": ["staffing"]}], False, "Labels"),
            ],
        ),
        # Worklogs; the first label is its project's code, as on staffing requests.
        time=(
            "worklogs",
            ticket_time_rules(
                code=("issue.labels.0", []),
                email="author.emailAddress",
                day="started_date",
                minutes="time_spent_minutes",
                notes=["issue.key", "comment"],
            ),
            {},
        ),
    ),
    "asana": TicketingProfile(
        # Time tracking entries; a project is named with its code first ("PRJ-113 Globex Data Platform").
        time=(
            "time_tracking_entries",
            ticket_time_rules(
                code=("project.name", [FIRST_WORD]),
                email="created_by.email",
                day="entered_on",
                minutes="duration_minutes",
                notes=["task.name"],
            ),
            {},
        ),
    ),
    "monday": TicketingProfile(
        # Sessions in an item's time tracking column; the board is named with its project's code first.
        time=(
            "time_tracking",
            ticket_time_rules(
                code=("board.name", [FIRST_WORD]),
                email="user.email",
                day="date",
                minutes="minutes",
                notes=["item.name"],
            ),
            {},
        ),
    ),
    "servicenow": TicketingProfile(
        # Time worked on incidents and tasks; the assignment group is named with its project's code first.
        time=(
            "task_time_worked",
            ticket_time_rules(
                code=("task.assignment_group.name", [FIRST_WORD]),
                email="user.email",
                day="work_date",
                minutes="minutes",
                notes=["task.number", "comments"],
            ),
            {},
        ),
    ),
}
