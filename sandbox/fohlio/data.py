"""Seeded data for the Fohlio sandbox: a team, its projects, contacts and client invoices.

The shapes follow apidocs.fohlio.com (docs/providers.md §4). Where the docs are silent the sandbox
picks the most plausible reading and says so here:

- `invoice_date` has no documented format: most invoices send `YYYY-MM-DD`, a few send an
  ISO timestamp (some with a non-UTC offset), drafts may send null.
- The tax flags name no rate: taxable lines pay `TAX_RATE`, second-taxable lines `SECOND_TAX_RATE`.
- `balance` is what remains unpaid: the full total while draft/sent/overdue, 0 once paid,
  deposited, void or revised, strictly between for paid_partially.
- Contacts carry no timestamp in the docs; the sandbox keeps one internally, used only to
  answer `updated_since`.
- Currency is not on the invoice. It is the project's currency when the project enables one
  (`project_currency.enabled`), else the client's (`data.currency`), else the team's default,
  which the API never shows (the pipeline is configured with it).
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from sandbox import framework

if TYPE_CHECKING:
    from sandbox.fohlio import Options

TAX_RATE = Decimal("0.08")
SECOND_TAX_RATE = Decimal("0.025")

STATUSES = ("draft", "sent", "paid", "overdue", "deposited", "void", "paid_partially", "revised")
CONTACT_CATEGORIES = (
    "client", "collaborator", "general_contractor", "manufacture", "project_manager", "purchasing_agent",
    "subcontractor", "supplier", "warehouse",
)  # fmt: skip
CURRENCIES = {
    "USD": (1, "US Dollar"), "EUR": (2, "Euro"), "GBP": (3, "British Pound"), "CAD": (4, "Canadian Dollar"),
}  # fmt: skip
_FIRMS = (
    "Harbor", "Linden", "Marlow", "Aster", "Cobalt", "Juniper", "Sable", "Ridge", "Orchid", "Vale", "Ember",
)  # fmt: skip
_KINDS = ("Hotels", "Residences", "Hospitality Group", "Studios", "Estates", "Offices", "Suites")
_CITIES = (
    ("New York", "NY", "US"), ("Miami", "FL", "US"), ("London", "", "GB"), ("Toronto", "ON", "CA"),
    ("Lisbon", "", "PT"), ("Austin", "TX", "US"),
)  # fmt: skip
_STREETS = ("Mercer St", "Ocean Dr", "King St W", "Rua Augusta", "Congress Ave")
_FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Eli")
_LAST_NAMES = ("Park", "Silva", "Novak")
_PRODUCTS = (
    ("Lounge chair", "Walnut frame, boucle upholstery", "ea"),
    ("Pendant light", "Hand-blown glass, brass canopy", "ea"), ("Area rug", "Hand-knotted wool, 8x10", "ea"),
    ("Drapery", "Linen blend, pinch pleat", "yd"), ("Wallcovering", "Grasscloth, natural", "roll"),
    ("Design fee", "Schematic design phase", "hr"), ("Procurement fee", "Purchasing and expediting", "hr"),
    ("Installation", "White-glove delivery and install", "hr"), ("Side table", "Travertine top", "ea"),
    ("Upholstery fabric", "Performance velvet", "yd"),
)  # fmt: skip


def iso(ts: dt.datetime) -> str:
    """An API timestamp: ISO 8601 in UTC with a `Z`, to the second (docs/providers.md §4.3)."""
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: Decimal) -> Decimal:
    return framework.money(value, ROUND_HALF_EVEN)


@dataclass
class Contact:
    id: int
    name: str
    category_type: str
    data: dict[str, Any]
    addresses: list[dict[str, Any]]
    people: list[dict[str, Any]]
    category_id: int
    updated_at: dt.datetime


@dataclass
class Project:
    id: int
    name: str
    client_id: int
    currency: str | None  # set when the project enables its own currency


@dataclass
class Item:
    id: int
    name: str
    description: str
    unit_type: str
    quantity: Decimal
    price: Decimal
    taxable: bool
    second_taxable: bool
    project_item_id: int
    is_service: bool


@dataclass
class Invoice:
    id: int
    project_id: int
    client_id: int
    status: str
    invoice_date: str | None
    label: str
    note: str | None
    items: list[Item]
    created_at: dt.datetime
    updated_at: dt.datetime
    term_days: list[int] = field(default_factory=list)
    paid_share: Decimal = Decimal(0)
    client_proposal_id: int | None = None
    purchase_order_ids: list[int] = field(default_factory=list)


@dataclass
class Team:
    id: int
    name: str
    default_currency: str
    contacts: dict[int, Contact]
    projects: dict[int, Project]
    invoices: dict[int, Invoice]


def generate(o: Options, now: dt.datetime) -> Team:
    """A team: contacts, projects with their client, invoices (every status once there are eight)."""
    rng = random.Random(o.seed)
    anchor = now - dt.timedelta(days=1)
    contacts: dict[int, Contact] = {}
    currency_cycle = ["EUR", None, "GBP", None, "usd", None, "CAD"]
    for n in range(o.clients + o.other_contacts):  # the clients, then the other contacts
        place = rng.choice(_CITIES)
        if n < o.clients:
            kind, name = "client", f"{_FIRMS[n % len(_FIRMS)]} {rng.choice(_KINDS)}"
            data: dict[str, Any] = {"website": f"https://{name.split()[0].lower()}.example"}
            data["tax_id"] = f"TX{rng.randrange(10**7, 10**8)}"
            if currency_cycle[n % len(currency_cycle)]:
                data["currency"] = currency_cycle[n % len(currency_cycle)]
        else:
            kind = CONTACT_CATEGORIES[1 + (n - o.clients) % (len(CONTACT_CATEGORIES) - 1)]
            name, data = f"{rng.choice(_FIRMS)} {kind.replace('_', ' ').title()} Co", {}
        contacts[501 + n] = _contact(rng, Contact(501 + n, name, kind, data, [], [], 0, anchor), place, anchor)

    client_ids = [c.id for c in contacts.values() if c.category_type == "client"]
    project_map: dict[int, Project] = {}
    project_currencies = [None, "EUR", None, "GBP", None, None, None]
    for n in range(o.projects):
        name = f"{rng.choice(_FIRMS)} {rng.choice(('Lobby', 'Suites', 'Penthouse', 'Spa', 'Flagship'))}"
        owner, currency = client_ids[n % len(client_ids)], project_currencies[n % len(project_currencies)]
        project_map[9001 + n] = Project(9001 + n, name, owner, currency)

    invoice_map: dict[int, Invoice] = {}
    project_ids = list(project_map)
    item_ids = itertools.count(70001)
    for n in range(o.invoices):
        iid = 30001 + n
        project = project_map[project_ids[n % len(project_ids)]]
        status = STATUSES[n % len(STATUSES)] if n < len(STATUSES) * 2 else rng.choice(STATUSES)
        created = anchor - dt.timedelta(days=rng.randrange(5, 360), seconds=rng.randrange(86400))
        updated = min(anchor, created + dt.timedelta(days=rng.randrange(0, 30), seconds=rng.randrange(86400)))
        items: list[Item] = []
        for _ in range(rng.randint(1, 5)):
            name, description, unit = rng.choice(_PRODUCTS)
            quantity = Decimal(rng.randint(1, 12)) if rng.random() < 0.8 else Decimal(rng.choice(("0.5", "1.5", "2.5")))
            price = Decimal(rng.randrange(1000, 480000, 2)).scaleb(-2)
            flags = (rng.random() < 0.75, rng.random() < 0.2)  # taxable, second taxable
            line = (name, description, unit, quantity, price, *flags, 40001 + rng.randrange(1000), unit == "hr")
            items.append(Item(next(item_ids), *line))
        invoice_date = _invoice_date(rng, created, status)
        no_terms = status == "draft" and rng.random() < 0.5
        terms = [] if no_terms else sorted(rng.sample((0, 15, 30, 45, 60), rng.randint(1, 3)))
        invoice_map[iid] = Invoice(
            id=iid, project_id=project.id, client_id=project.client_id, status=status, invoice_date=invoice_date,
            label=f"INV-{n + 1:05d}",
            note=rng.choice((None, "Thank you for your business.", "Deposit due on approval.", "")), items=items,
            created_at=created, updated_at=updated, term_days=rng.sample(terms, len(terms)),
            paid_share=Decimal(rng.choice(("0.25", "0.4", "0.5", "0.6"))),
            client_proposal_id=rng.choice((None, 8000 + n)),
            purchase_order_ids=rng.sample(range(60001, 60050), rng.randint(0, 2)),
        )  # fmt: skip
    return Team(7, "Atelier Sandbox", o.currency or "", contacts, project_map, invoice_map)


def _contact(rng: random.Random, contact: Contact, where: tuple[str, str, str], anchor: dt.datetime) -> Contact:
    """`contact` with its addresses (`where`: city, state, country), people, category id and timestamp."""
    cid, place = contact.id, dict(zip(("city", "state", "country"), where, strict=True))
    street = f"{rng.randint(1, 999)} {rng.choice(_STREETS)}"
    phone, post_code = f"+1 555 {rng.randint(1000, 9999)}", f"{rng.randint(10000, 99999)}"
    office = {"id": cid * 10 + 1, "name": "Office", "phone": phone, "post_code": post_code, "address_line_1": street}
    addresses = [{**office, "address_line_2": "", **place}]
    if rng.random() < 0.4:
        site = {"id": cid * 10 + 2, "name": "Site", "phone": "", "post_code": "", "address_line_1": "Site"}
        addresses.append({**site, "address_line_2": "", **place})
    first = contact.name.split()[0].lower()
    person = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
    accounts = {"id": cid * 10 + 1, "name": person, "email": f"accounts@{first}.example", "phone": ""}
    people = [{**accounts, "position": "Accounts payable", "note": ""}]
    if rng.random() < 0.5:
        desk = {"id": cid * 10 + 2, "name": "Front desk", "email": f"hello@{first}.example", "phone": ""}
        people.insert(0, {**desk, "position": "", "note": ""})
    contact.addresses, contact.people = addresses, people
    contact.category_id = 100 + CONTACT_CATEGORIES.index(contact.category_type)
    contact.updated_at = anchor - dt.timedelta(days=rng.randrange(1, 400))
    return contact


def _invoice_date(rng: random.Random, created: dt.datetime, status: str) -> str | None:
    if status == "draft" and rng.random() < 0.5:
        return None
    day = created.date() + dt.timedelta(days=rng.randrange(0, 3))
    shape = rng.random()
    if shape < 0.8:
        return day.isoformat()
    if shape < 0.9:
        return f"{day.isoformat()}T00:00:00Z"
    return f"{day.isoformat()}T00:00:00-05:00"
