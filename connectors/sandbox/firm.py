"""One deterministic professional-services firm that every vendor sandbox seeds from.

The same seed gives the same people, customers, deals, projects, time entries and expenses in every sandbox,
so the CRM, ERP, PSA, HR and ticketing emulators agree with each other the way a real client's systems should.
Small collections are built once and cached; time entries and expenses are computed from their index alone, so
a sandbox can serve 100,000 of them without holding them in memory.

The firm has history in every system, as a firm adopting the product does, and a few deliberate faults that
an integration must report truthfully, each once:
- history: the ERP holds every customer, the projects set up before the last 20 deals were won
  (`erp_projects`), every employee but the latest hires (`erp_people`) and invoices from before the firm
  moved its time-keeping to the PSA (`erp_invoices`); the PSA holds every project; the ticketing system
  holds a staffing request per project; won deals in the CRM carry their project's code.
- faults: about one person in 67 has no cost rate; one customer was entered twice in the CRM, with one
  won deal on the second record (`crm_companies`); two follow-on phases were opened in the PSA under
  codes the ERP does not know, and time is booked on them (`psa_only_projects`); a few HR records lack
  a department or a work email (`hr_gaps`).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property, lru_cache

_MASK = (1 << 64) - 1

FIRM_NAME = "Halden & Rowe Consulting"
FIRM_DOMAIN = "haldenrowe.example"
# Time is logged from this Monday on, one business day after another.
TIME_START = date(2023, 1, 2)

# The ERP has the projects of the first 60 won deals; the last 20 were won but not set up there yet.
PROJECTS_IN_ERP = 60
# The last hires are not in the ERP yet.
PEOPLE_NOT_IN_ERP = 10
# The customer entered a second time in the CRM, under a slightly different name, with a won deal on it.
CRM_TWIN_OF = 1
# Follow-on phases opened in the PSA only (parent project id -> suffix of the code the PSA uses).
PSA_ONLY_PHASES = {12: "B", 40: "B"}
# The HR system's gaps: people whose record lacks a department (id % 37 == 5) or a work email (id % 43 == 11).
HR_NO_DEPARTMENT = (37, 5)
HR_NO_EMAIL = (43, 11)

FIRST_NAMES = (
    "Aisha Alex Amara Ana Ben Bianca Carlos Chen Chloe Dan Daria Elena Emeka Eva Farah Felix Grace Hana Hugo Ines "
    "Isaac Jana Jonas Julia Kai Kofi Lara Leo Lina Luca Maya Mei Nadia Noah Nora Omar Oscar Priya Quinn Rafael Rosa "
    "Sam Sara Sofia Tariq Tom Uma Victor Wen Yara Yusuf Zoe Ivan Marta Pablo Greta Theo Lucia Anton Ravi"
).split()
LAST_NAMES = (
    "Abbott Adeyemi Bauer Bianchi Brennan Castillo Chowdhury Costa Dubois Eriksen Fischer Garcia Haddad Hansen Ito "
    "Jansen Kaur Kowalski Larsen Lindqvist Meyer Moreau Nakamura Novak Okafor Olsen Patel Petrov Quinlan Rossi "
    "Santos Schmidt Silva Sorensen Tanaka Thompson Usman Varga Walsh Weber Xu Yilmaz Zhang Murphy Byrne Kelly Reyes"
).split()

# People in a practice bill clients; people in a support department do not.
PRACTICES = ("Strategy", "Technology", "Finance Advisory", "Operations", "Data & Analytics")
SUPPORT_DEPARTMENTS = ("Finance", "People", "Business Development")

# Level -> (job title suffix, yearly salary USD, cost rate USD/h, bill rate USD/h); lower levels are commoner.
LEVELS = (
    ("Analyst", 72000, Decimal("55.00"), Decimal("140.00")),
    ("Consultant", 90000, Decimal("68.00"), Decimal("175.00")),
    ("Senior Consultant", 112000, Decimal("84.00"), Decimal("215.00")),
    ("Manager", 138000, Decimal("102.00"), Decimal("260.00")),
    ("Senior Manager", 165000, Decimal("121.00"), Decimal("305.00")),
    ("Director", 198000, Decimal("145.00"), Decimal("360.00")),
    ("Partner", 260000, Decimal("190.00"), Decimal("450.00")),
)
LEVEL_WEIGHTS = (22, 28, 20, 14, 8, 5, 3)

# Location -> (country, currency, factor applied to USD rates)
LOCATIONS = {
    "New York": ("US", "USD", Decimal("1.00")),
    "Chicago": ("US", "USD", Decimal("0.95")),
    "Austin": ("US", "USD", Decimal("0.92")),
    "London": ("GB", "GBP", Decimal("0.80")),
    "Berlin": ("DE", "EUR", Decimal("0.90")),
}
LOCATION_WEIGHTS = (30, 20, 15, 20, 15)

CUSTOMER_PREFIXES = (
    "Northwind Acme Globex Initech Umbrella Stark Wayne Tyrell Cyberdyne Soylent Hooli Vandelay Wonka Gringotts "
    "Oceanic Aperture Massive Blue Sun Monarch Pied Piper"
).split()
CUSTOMER_SUFFIXES = ("Industries", "Health", "Logistics", "Energy", "Retail", "Bank", "Foods", "Labs")
CUSTOMER_CITIES = (
    ("New York", "NY", "10001", "US", "USD"),
    ("Boston", "MA", "02110", "US", "USD"),
    ("Chicago", "IL", "60601", "US", "USD"),
    ("Denver", "CO", "80202", "US", "USD"),
    ("London", "", "EC2A 4NE", "GB", "GBP"),
    ("Manchester", "", "M1 1AE", "GB", "GBP"),
    ("Munich", "", "80331", "DE", "EUR"),
    ("Hamburg", "", "20095", "DE", "EUR"),
)
STREETS = ("Market Street", "King Street", "Harbour Road", "Station Road", "Main Street", "Park Avenue")
PAYMENT_TERMS = ("Net 30", "Net 30", "Net 45", "Net 15", "Net 60", "Due on receipt")
BILLING_TERMS = ("Time and materials", "Time and materials", "Fixed fee", "Retainer")
PROJECT_KINDS = (
    "ERP Selection",
    "Cloud Migration",
    "Pricing Review",
    "Finance Transformation",
    "Data Platform",
    "Supply Chain Diagnostic",
    "Operating Model Redesign",
    "CRM Rollout",
    "Cost Reduction",
    "Due Diligence",
)
OPEN_DEAL_STAGES = ("qualification", "needs_analysis", "proposal", "negotiation")
TIME_NOTES = (
    "Client workshop",
    "Requirements interviews",
    "Status meeting and follow-ups",
    "Drafted findings deck",
    "Data analysis",
    "Solution design",
    "Testing support",
    "Stakeholder review",
    "Documentation",
    "Travel to client site",
)
EXPENSE_CATEGORIES = (
    ("Travel", 18000, 90000),
    ("Lodging", 12000, 45000),
    ("Meals", 1500, 9000),
    ("Mileage", 2000, 12000),
    ("Software", 2500, 30000),
)


def _hash(*values: int) -> int:
    """A fast, well-mixed 64-bit hash of integers (splitmix64 steps), so record i needs nothing but i."""
    x = 0x9E3779B97F4A7C15
    for value in values:
        x = (x ^ (value & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
        x ^= x >> 31
    return x


def minute_stamps(epoch: datetime) -> Callable[[], datetime]:
    """A clock for seeding: each call is one minute later than the last, starting a minute after `epoch`."""
    minutes = itertools.count(1)
    return lambda: epoch + timedelta(minutes=next(minutes))


@lru_cache(maxsize=4096)
def business_day(index: int) -> date:
    """The index-th business day (Mon-Fri) from TIME_START."""
    weeks, weekday = divmod(index, 5)
    return TIME_START + timedelta(days=weeks * 7 + weekday)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


# What one unit of each currency is worth in US dollars: the firm's fixed planning rates.
USD_PER_UNIT = {"USD": Decimal("1.00"), "GBP": Decimal("1.25"), "EUR": Decimal("1.10")}


def convert(amount: str | None, from_currency: str, to_currency: str) -> str | None:
    """An amount (a decimal string) in another currency at the firm's planning rates, to the cent."""
    if amount is None or from_currency == to_currency:
        return amount
    return _money(Decimal(amount) * USD_PER_UNIT[from_currency] / USD_PER_UNIT[to_currency])


class Firm:
    """The firm: `Firm(seed=42, people=200, customers=40, projects=80)`.

    Every method returns plain dicts with vendor-neutral field names; each sandbox maps them to its vendor's
    shape and ids. Money is a decimal string with a currency; dates are ISO strings.
    """

    def __init__(
        self,
        seed: int = 42,
        people: int = 200,
        customers: int = 40,
        projects: int = 80,
        time_entries: int = 3000,
        expenses: int = 600,
    ):
        self.seed = seed
        self.people_count = people
        self.customer_count = customers
        self.project_count = projects
        self.time_entry_count = time_entries  # default volume; sandboxes can serve more through /_sandbox/seed
        self.expense_count = expenses
        self.name = FIRM_NAME
        self.domain = FIRM_DOMAIN

    # -- small collections, built once ---------------------------------------------------------------------------

    def people(self) -> list[dict]:
        return self._people

    def customers(self) -> list[dict]:
        return self._customers

    def projects(self) -> list[dict]:
        return self._projects

    def deals(self) -> list[dict]:
        return self._deals

    def erp_projects(self) -> list[dict]:
        """The projects the ERP already holds: those of the first PROJECTS_IN_ERP won deals."""
        return self._projects[:PROJECTS_IN_ERP]

    def erp_people(self) -> list[dict]:
        """The people the ERP already holds as employees: everyone but the latest hires."""
        return self._people[: max(0, len(self._people) - PEOPLE_NOT_IN_ERP)]

    def crm_companies(self) -> list[dict]:
        """The CRM's companies: every customer, then the one entered twice (`twin_of` names the original)."""
        return self._crm_companies

    def crm_company_of(self, deal: dict) -> int | None:
        """The CRM company a deal sits on: its customer's, or the twin's for the one deal entered there."""
        return self._twin_deal.get(deal["id"], deal["customer_id"])

    def psa_only_projects(self) -> list[dict]:
        """Follow-on phases opened in the PSA under codes the ERP does not know (no deal, no ERP project)."""
        return self._psa_only_projects

    def psa_projects(self) -> list[dict]:
        """Every project the PSA holds: the won deals' and the PSA-only phases."""
        return self._projects + self._psa_only_projects

    def erp_invoices(self) -> list[dict]:
        """Invoices the ERP issued before the firm kept time in the PSA (TIME_START): month-end invoices of the
        ERP projects that were running by then. They cover months before any time entry, so they never bill
        what the PSA's time bills."""
        return self._erp_invoices

    def hr_gaps(self) -> dict[int, str]:
        """person id -> the field the HR system has no value for ("department" or "work_email")."""
        gaps = {}
        for person in self._people[1:]:
            if person["id"] % HR_NO_EMAIL[0] == HR_NO_EMAIL[1]:
                gaps[person["id"]] = "work_email"
            elif person["id"] % HR_NO_DEPARTMENT[0] == HR_NO_DEPARTMENT[1]:
                gaps[person["id"]] = "department"
        return gaps

    def person(self, person_id: int) -> dict:
        return self._people[person_id - 1]

    def project(self, project_id: int) -> dict:
        return self._projects[project_id - 1]

    @cached_property
    def _people(self) -> list[dict]:
        rng = random.Random(f"{self.seed}:people")
        people: list[dict] = []
        emails: set[str] = set()
        for index in range(self.people_count):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first}.{last}@{self.domain}".lower()
            suffix = 2
            while email in emails:
                email = f"{first}.{last}{suffix}@{self.domain}".lower()
                suffix += 1
            emails.add(email)
            # Person 1 is the managing partner; one in ten works in a support department.
            level = 6 if index == 0 else rng.choices(range(len(LEVELS)), LEVEL_WEIGHTS)[0]
            support = index > 0 and rng.random() < 0.1
            practice = rng.choice(PRACTICES)
            department = rng.choice(SUPPORT_DEPARTMENTS) if support else practice
            title, salary, cost, bill = LEVELS[level]
            location = "New York" if index == 0 else rng.choices(list(LOCATIONS), LOCATION_WEIGHTS)[0]
            country, currency, factor = LOCATIONS[location]
            hire = date(2012, 1, 1) + timedelta(days=rng.randrange(0, 11 * 365))
            inactive = index > 0 and rng.random() < 0.05
            termination = hire + timedelta(days=rng.randrange(200, 900)) if inactive else None
            has_cost_rate = index % 67 != 13
            people.append(
                {
                    "id": index + 1,
                    "employee_number": f"E{1001 + index}",
                    "first_name": first,
                    "last_name": last,
                    "display_name": f"{first} {last}",
                    "work_email": email,
                    "department": department,
                    "practice": practice,
                    "job_title": f"{practice} {title}" if not support else f"{department} {title}",
                    "level": title,
                    "location": location,
                    "country": country,
                    "status": "Inactive" if inactive else "Active",
                    "hire_date": hire.isoformat(),
                    "termination_date": termination.isoformat() if termination else None,
                    "pay_rate": _money(Decimal(salary) * factor),
                    "pay_type": "Salary",
                    "pay_period": "Year",
                    "currency": currency,
                    "cost_rate": _money(cost * factor) if has_cost_rate else None,
                    "bill_rate": None if support else _money(bill * factor),
                    "billable": not support,
                    "supervisor_email": None,
                }
            )
        self._assign_supervisors(people, rng)
        return people

    @staticmethod
    def _assign_supervisors(people: list[dict], rng: random.Random) -> None:
        managing_partner = people[0]
        leaders = [p for p in people[1:] if p["level"] in ("Manager", "Senior Manager", "Director", "Partner")]
        for person in people[1:]:
            peers = [
                leader
                for leader in leaders
                if leader is not person
                and leader["practice"] == person["practice"]
                and LEVELS_BY_TITLE[leader["level"]] > LEVELS_BY_TITLE[person["level"]]
            ]
            boss = rng.choice(peers) if peers else managing_partner
            person["supervisor_email"] = boss["work_email"]

    @cached_property
    def _customers(self) -> list[dict]:
        rng = random.Random(f"{self.seed}:customers")
        customers: list[dict] = []
        names: set[str] = set()
        for index in range(self.customer_count):
            name = f"{rng.choice(CUSTOMER_PREFIXES)} {rng.choice(CUSTOMER_SUFFIXES)}"
            while name in names:
                name = f"{rng.choice(CUSTOMER_PREFIXES)} {rng.choice(CUSTOMER_SUFFIXES)}"
            names.add(name)
            city, region, postal_code, country, currency = rng.choice(CUSTOMER_CITIES)
            slug = name.lower().replace(" ", "")
            customers.append(
                {
                    "id": index + 1,
                    "number": f"C{5001 + index}",
                    "name": name,
                    "domain": f"{slug}.example",
                    "phone": f"+1 555 01{index:02d}",
                    "billing_address": {
                        "street": f"{rng.randrange(1, 400)} {rng.choice(STREETS)}",
                        "city": city,
                        "region": region,
                        "postal_code": postal_code,
                        "country": country,
                    },
                    "payment_terms": rng.choice(PAYMENT_TERMS),
                    "currency": currency,
                }
            )
        return customers

    @cached_property
    def _projects(self) -> list[dict]:
        rng = random.Random(f"{self.seed}:projects")
        managers = [p for p in self._people if p["level"] in ("Manager", "Senior Manager") and p["status"] == "Active"]
        projects: list[dict] = []
        for index in range(self.project_count):
            customer = self._customers[index % len(self._customers)] if self._customers else None
            kind = rng.choice(PROJECT_KINDS)
            start = TIME_START - timedelta(days=60) + timedelta(days=rng.randrange(0, 720))
            end = start + timedelta(days=rng.randrange(60, 300))
            budget = Decimal(rng.randrange(40, 900)) * 1000
            manager = rng.choice(managers) if managers else self._people[0]
            projects.append(
                {
                    "id": index + 1,
                    "code": f"PRJ-{101 + index}",
                    "name": f"{customer['name']} {kind}" if customer else kind,
                    "customer_id": customer["id"] if customer else None,
                    "customer_name": customer["name"] if customer else None,
                    "start_date": start.isoformat(),
                    "end_date": end.isoformat(),
                    "billing_terms": rng.choice(BILLING_TERMS),
                    "budget": _money(budget),
                    "currency": customer["currency"] if customer else "USD",
                    "status": "Active",
                    "practice": manager["practice"],
                    "manager_email": manager["work_email"],
                    "deal_id": index + 1,  # every project was won as the deal with the same number
                }
            )
        return projects

    @cached_property
    def _deals(self) -> list[dict]:
        """One closed-won deal per project, then open and lost deals (half as many again)."""
        rng = random.Random(f"{self.seed}:deals")
        deals: list[dict] = []
        for project in self._projects:
            close = date.fromisoformat(project["start_date"]) - timedelta(days=rng.randrange(7, 40))
            deals.append(
                {
                    "id": project["id"],
                    "name": project["name"],
                    "customer_id": project["customer_id"],
                    "customer_name": project["customer_name"],
                    "amount": project["budget"],
                    "currency": project["currency"],
                    "stage": "closed_won",
                    "close_date": close.isoformat(),
                    "project_code": project["code"],
                    "owner_email": project["manager_email"],
                    "billing_terms": project["billing_terms"],
                }
            )
        for offset in range(len(self._projects) // 2):
            customer = rng.choice(self._customers) if self._customers else None
            stage = "closed_lost" if offset % 5 == 4 else rng.choice(OPEN_DEAL_STAGES)
            close = TIME_START + timedelta(days=rng.randrange(0, 900))
            deals.append(
                {
                    "id": len(self._projects) + offset + 1,
                    "name": f"{customer['name'] if customer else 'Prospect'} {rng.choice(PROJECT_KINDS)}",
                    "customer_id": customer["id"] if customer else None,
                    "customer_name": customer["name"] if customer else None,
                    "amount": _money(Decimal(rng.randrange(30, 700)) * 1000),
                    "currency": customer["currency"] if customer else "USD",
                    "stage": stage,
                    "close_date": close.isoformat(),
                    "project_code": None,
                    "owner_email": self._people[0]["work_email"],
                    "billing_terms": rng.choice(BILLING_TERMS),
                }
            )
        return deals

    @cached_property
    def _crm_companies(self) -> list[dict]:
        companies = [dict(customer, twin_of=None) for customer in self._customers]
        if len(self._customers) >= CRM_TWIN_OF:
            original = self._customers[CRM_TWIN_OF - 1]
            twin = dict(original, id=len(self._customers) + 1, name=f"{original['name']} Ltd.", twin_of=original["id"])
            twin["number"] = None  # the CRM's second record was never given an account number
            companies.append(twin)
        return companies

    @cached_property
    def _twin_deal(self) -> dict[int, int]:
        """deal id -> twin company id, for the one won deal a salesperson put on the twin."""
        twins = [c for c in self._crm_companies if c["twin_of"]]
        if not twins:
            return {}
        twin = twins[0]
        won = [d for d in self._deals if d["customer_id"] == twin["twin_of"] and d["stage"] == "closed_won"]
        return {won[-1]["id"]: twin["id"]} if won else {}

    @cached_property
    def _psa_only_projects(self) -> list[dict]:
        phases = []
        for offset, (parent_id, suffix) in enumerate(sorted(PSA_ONLY_PHASES.items())):
            if parent_id > len(self._projects):
                continue
            parent = self._projects[parent_id - 1]
            phases.append(
                dict(
                    parent,
                    id=len(self._projects) + offset + 1,
                    code=f"{parent['code']}{suffix}",
                    name=f"{parent['name']} phase 2",
                    deal_id=None,
                    parent_id=parent_id,
                )
            )
        return phases

    @cached_property
    def _phase_of(self) -> dict[int, dict]:
        return {phase["parent_id"]: phase for phase in self._psa_only_projects}

    def _booked_on(self, project: dict, day_index: int) -> dict:
        """Every other day, work on a project with a PSA-only follow-on phase is booked on the phase."""
        phase = self._phase_of.get(project["id"])
        return phase if phase is not None and day_index % 2 == 1 else project

    @cached_property
    def _erp_invoices(self) -> list[dict]:
        rng = random.Random(f"{self.seed}:invoices")
        invoices = []
        for project in self.erp_projects():
            start = date.fromisoformat(project["start_date"])
            month = start.replace(day=1)
            while month < TIME_START.replace(day=1):
                following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
                hours = Decimal(rng.randrange(20, 160))
                rate = Decimal("175.00")
                invoices.append(
                    {
                        "number": f"INV{10001 + len(invoices)}",
                        "project_id": project["id"],
                        "customer_id": project["customer_id"],
                        "date": (following - timedelta(days=1)).isoformat(),
                        "currency": project["currency"],
                        "description": f"Consulting services {project['code']} {month:%B %Y}",
                        "quantity": _money(hours),
                        "rate": _money(rate),
                        "amount": _money(hours * rate),
                    }
                )
                month = following
        return invoices

    @cached_property
    def _active_billable_people(self) -> list[dict]:
        return [p for p in self._people if p["status"] == "Active" and p["billable"]] or self._people[:1]

    # -- large collections, computed from the index -----------------------------------------------------------

    @cached_property
    def entries_per_day(self) -> int:
        """How many time entries one business day holds: three in four billable people log a day."""
        return max(1, len(self._active_billable_people) * 3 // 4)

    def time_entries(self, start: int = 0, count: int | None = None) -> Iterator[dict]:
        """Entries start..start+count-1 (count None: up to time_entry_count), in date and updated_at order."""
        stop = self.time_entry_count if count is None else start + count
        for index in range(start, stop):
            yield self.time_entry(index)

    def bookings(self) -> Iterator[tuple[dict, dict]]:
        """Each person and each PSA project they booked time on, once, in the order of their first entry on it."""
        projects = {p["id"]: p for p in self.psa_projects()}
        seen: set[tuple[int, int]] = set()
        for entry in self.time_entries():
            pair = (entry["person_id"], entry["project_id"])
            if pair not in seen:
                seen.add(pair)
                yield self.person(pair[0]), projects[pair[1]]

    def time_entry(self, index: int) -> dict:
        """Entry `index` (0-based), computed from the index alone. Its id is index + 1."""
        per_day = self.entries_per_day
        day_index, slot = divmod(index, per_day)
        day = business_day(day_index)
        workers = self._active_billable_people
        # A different rotation each day, but never the same person twice on one day.
        person = workers[(slot + day_index * 37) % len(workers)]
        week = day_index // 5
        h = _hash(self.seed, index)
        project = self._booked_on(self._projects[_hash(self.seed, person["id"], week) % len(self._projects)], day_index)
        minutes = 60 + (h % 29) * 15  # 1h to 8h in quarter hours
        created = datetime(day.year, day.month, day.day, 17, 0, 0) + timedelta(seconds=slot * 20)
        stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "id": index + 1,
            "person_id": person["id"],
            "person_email": person["work_email"],
            "project_id": project["id"],
            "project_code": project["code"],
            "date": day.isoformat(),
            "minutes": minutes,
            "billable": (h >> 8) % 10 < 8,
            "notes": TIME_NOTES[(h >> 16) % len(TIME_NOTES)],
            "approved": (h >> 24) % 20 != 0,
            # The PSA records an entry's rates in its project's currency, as it bills that project.
            "bill_rate": convert(person["bill_rate"], person["currency"], project["currency"]),
            "cost_rate": convert(person["cost_rate"], person["currency"], project["currency"]),
            "currency": project["currency"],
            "created_at": stamp,
            "updated_at": stamp,
        }

    def expenses(self, start: int = 0, count: int | None = None) -> Iterator[dict]:
        """Expenses start..start+count-1 (count None: up to expense_count), in date order. Id is index + 1."""
        stop = self.expense_count if count is None else start + count
        for index in range(start, stop):
            yield self.expense(index)

    def expense(self, index: int) -> dict:
        day_index, slot = divmod(index, 5)  # five expense claims a business day
        day = business_day(day_index)
        h = _hash(self.seed, 7, index)
        workers = self._active_billable_people
        person = workers[h % len(workers)]
        project = self._projects[_hash(self.seed, person["id"], day_index // 5) % len(self._projects)]
        project = self._booked_on(project, day_index)
        category, low, high = EXPENSE_CATEGORIES[(h >> 12) % len(EXPENSE_CATEGORIES)]
        cents = low + (h >> 20) % (high - low)
        created = datetime(day.year, day.month, day.day, 19, 0, 0) + timedelta(seconds=slot * 60)
        stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "id": index + 1,
            "person_id": person["id"],
            "person_email": person["work_email"],
            "project_id": project["id"],
            "project_code": project["code"],
            "date": day.isoformat(),
            "category": category,
            "amount": _money(Decimal(cents) / 100),
            "currency": project["currency"],  # claimed in the currency the project is billed in
            "billable": category != "Software",
            "reimbursable": category != "Software",
            "notes": f"{category} for {project['code']}",
            "approved": (h >> 40) % 10 != 0,
            "created_at": stamp,
            "updated_at": stamp,
        }


LEVELS_BY_TITLE = {title: rank for rank, (title, *_rest) in enumerate(LEVELS)}
