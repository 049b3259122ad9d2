"""The firm's ticket work, which every ticketing sandbox (Jira, Asana, monday.com, ServiceNow) serves its own way.

Some of the firm's projects have a support queue in the ticketing system: a few tickets each, on which the
people working them log time. The ticketing system names each queue after its project, with the project's
code first ("PRJ-113 Globex Data Platform"), so the time can be matched to the project in the PSA. One queue was
set up with its code mistyped (a letter O for a zero): its time matches no project until a person maps the code.
Everything is computed from the firm, so a test can say what the PSA must hold after the time was synced.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from connectors.sandbox.firm import Firm, _hash, business_day

# Every eighth project, from the fifth on, has a support queue (10 of the firm's 80 projects).
QUEUE_EVERY, QUEUE_FROM = 8, 5
TICKETS_PER_QUEUE = 2
LOGS_PER_TICKET = 3
# The queue whose code was typed with a letter O for the zero: project 5, "PRJ-105", spelt "PRJ-1O5".
MISTYPED = {5: "PRJ-1O5"}
TICKET_TITLES = (
    "Month-end report shows wrong totals",
    "Access request for the client workspace",
    "Data load failed overnight",
    "Dashboard filter does not save",
    "Question on the rollout plan",
    "Integration error after the upgrade",
)
WORK_NOTES = ("Investigated", "Fixed and tested", "Call with the client", "Wrote up the workaround", "Reviewed logs")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=8)
def _work(firm: Firm) -> tuple[tuple[dict, ...], tuple[dict, ...], tuple[dict, ...]]:
    projects = [p for p in firm.projects() if p["id"] % QUEUE_EVERY == QUEUE_FROM % QUEUE_EVERY]
    workers = [p for p in firm.people() if p["status"] == "Active" and p["billable"]]
    # Time is logged on the days the firm's own time covers, so a dashboard's window holds both.
    days = max(1, -(-firm.time_entry_count // firm.entries_per_day))
    queues, tickets, logs = [], [], []
    for project in projects:
        code = MISTYPED.get(project["id"], project["code"])
        queue = {
            "id": len(queues) + 1,
            "project_id": project["id"],
            "code": code,
            "name": f"{code} {project['name']}",
            "manager_email": project["manager_email"],
            "currency": project["currency"],
        }
        queues.append(queue)
        for _ in range(TICKETS_PER_QUEUE):
            number = len(tickets) + 1
            h = _hash(firm.seed, 301, number)
            opened = datetime.combine(business_day(h % days), datetime.min.time()) + timedelta(hours=8, minutes=number)
            ticket = {
                "id": number,
                "queue_id": queue["id"],
                "code": code,
                "title": TICKET_TITLES[h % len(TICKET_TITLES)],
                "opened_at": _stamp(opened),
                "assignee_email": workers[(h >> 8) % len(workers)]["work_email"],
            }
            tickets.append(ticket)
            for slot in range(LOGS_PER_TICKET):
                index = len(logs)
                g = _hash(firm.seed, 302, index)
                person = workers[(g >> 4) % len(workers)]
                day = business_day(g % days)
                logged = datetime.combine(day, datetime.min.time()) + timedelta(hours=18, minutes=index)
                logs.append(
                    {
                        "id": index + 1,
                        "ticket_id": number,
                        "queue_id": queue["id"],
                        "code": code,
                        "project_id": project["id"],
                        "person_email": person["work_email"],
                        "person_name": person["display_name"],
                        "date": day.isoformat(),
                        "minutes": 15 * (1 + (g >> 12) % 16),  # a quarter of an hour to four hours
                        "notes": f"{WORK_NOTES[(g >> 20) % len(WORK_NOTES)]}: {ticket['title']}",
                        "created_at": _stamp(logged),
                        # One log in five was corrected a day later: an incremental read must bring it again.
                        "updated_at": _stamp(logged + timedelta(days=1) if slot == 1 and index % 5 == 1 else logged),
                    }
                )
    return tuple(queues), tuple(tickets), tuple(logs)


def support_queues(firm: Firm) -> list[dict]:
    """The projects with a support queue, as the ticketing system names them (one with its code mistyped)."""
    return [dict(q) for q in _work(firm)[0]]


def support_tickets(firm: Firm) -> list[dict]:
    return [dict(t) for t in _work(firm)[1]]


def work_logs(firm: Firm) -> list[dict]:
    """Time logged on the tickets: person, day and minutes, with the code of the queue it was logged in."""
    return [dict(w) for w in _work(firm)[2]]
