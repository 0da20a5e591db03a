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

import bisect
import datetime as dt
import random
from array import array
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from sandbox import framework
from sandbox.framework import Replay

if TYPE_CHECKING:
    from sandbox.fohlio import Options

TAX_RATE = Decimal("0.08")
SECOND_TAX_RATE = Decimal("0.025")

FIRST_INVOICE, FIRST_ITEM = 30001, 70001  # the generated invoices' and their lines' first ids
_MICROSECOND = dt.timedelta(microseconds=1)
ZERO_BALANCE = {"paid", "deposited", "void", "revised"}
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
    invoices: Invoices


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

    projects = [(p.id, p.client_id) for p in project_map.values()]
    invoices = Invoices(rng, o.invoices, anchor, projects)
    return Team(7, "Atelier Sandbox", o.currency or "", contacts, project_map, invoices)


def figures(invoice: Invoice) -> dict[str, Decimal]:
    """The invoice's amounts, computed from its lines and status."""

    def worth(lines: Any) -> Decimal:
        return sum((i.quantity * i.price for i in lines), Decimal(0))

    taxable = worth(i for i in invoice.items if i.taxable)
    services = worth(i for i in invoice.items if i.is_service)
    tax = money(taxable * TAX_RATE + worth(i for i in invoice.items if i.second_taxable) * SECOND_TAX_RATE)
    amount = money(worth(invoice.items))
    total = amount + tax
    if invoice.status in ZERO_BALANCE:
        balance = Decimal("0.00")
    elif invoice.status == "paid_partially":
        balance = money(total * (1 - invoice.paid_share))
    else:
        balance = total
    paid = Decimal("0.00") if invoice.status in {"void", "revised"} else total - balance
    return {  # in the order the API writes them
        "tax_amount": tax, "taxable_amount": money(taxable), "amount": amount, "amount_with_tax": total,
        "balance": balance, "retainer_amount": Decimal("0.00"), "products_amount": amount - money(services),
        "services_amount": money(services), "balance_transactions_amount": paid,
    }  # fmt: skip


class Invoices(MutableMapping[int, Invoice]):
    """A team's client invoices by id, in the order they were made: the generated ones (ids from `FIRST_INVOICE`, every
    status once there are eight), then those added.

    The generated ones are made one after another from the seed and kept as a `Replay` plus a few numbers each: a team
    of a million invoices holds none until one is asked for. Reading one by id (or iterating the values) hands out the
    record itself, to change in place as the API's own rows; those are kept from then on.
    """

    def __init__(self, rng: random.Random, count: int, anchor: dt.datetime, projects: list[tuple[int, int]]) -> None:
        self.anchor, self.projects, self.client_of = anchor, projects, dict(projects)
        self.project, self.updated, self.total, self.lines = array("q"), array("q"), array("q"), bytearray()
        self.gone: set[int] = set()  # deleted generated invoices
        self.added: dict[int, Invoice] = {}
        self.generated = Replay(self._make, rng, count, FIRST_ITEM, self._observe)

    def _make(self, rng: random.Random, n: int, item_id: int) -> tuple[Invoice, int]:
        """Invoice `n` of the generated ones, its lines numbered from `item_id`."""
        anchor = self.anchor
        project_id, client_id = self.projects[n % len(self.projects)]
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
            items.append(Item(item_id, *line))
            item_id += 1
        invoice_date = _invoice_date(rng, created, status)
        no_terms = status == "draft" and rng.random() < 0.5
        terms = [] if no_terms else sorted(rng.sample((0, 15, 30, 45, 60), rng.randint(1, 3)))
        return Invoice(
            id=FIRST_INVOICE + n, project_id=project_id, client_id=client_id, status=status,
            invoice_date=invoice_date, label=f"INV-{n + 1:05d}",
            note=rng.choice((None, "Thank you for your business.", "Deposit due on approval.", "")), items=items,
            created_at=created, updated_at=updated, term_days=rng.sample(terms, len(terms)),
            paid_share=Decimal(rng.choice(("0.25", "0.4", "0.5", "0.6"))),
            client_proposal_id=rng.choice((None, 8000 + n)),
            purchase_order_ids=rng.sample(range(60001, 60050), rng.randint(0, 2)),
        ), item_id  # fmt: skip

    def _observe(self, n: int, invoice: Invoice) -> None:
        """Note what listings and summaries need of a generated invoice, as it is first made."""
        self.project.append(invoice.project_id)
        self.updated.append((invoice.updated_at - self.anchor) // _MICROSECOND)
        self.total.append(int(figures(invoice)["amount_with_tax"] * 100))
        self.lines.append(len(invoice.items))

    # --- the mapping the app keeps ------------------------------------------------------------
    def _generated(self, invoice_id: object) -> int | None:
        """The number of the generated invoice `invoice_id`, None if it is not one (or was deleted)."""
        if not isinstance(invoice_id, int) or invoice_id in self.added:
            return None
        n = invoice_id - FIRST_INVOICE
        return n if 0 <= n < self.generated.count and n not in self.gone else None

    def __getitem__(self, invoice_id: int) -> Invoice:
        n = self._generated(invoice_id)
        return self.added[invoice_id] if n is None else self.generated.hold(n)

    def __setitem__(self, invoice_id: int, invoice: Invoice) -> None:
        n = self._generated(invoice_id)
        if n is None:
            self.added[invoice_id] = invoice
        else:
            self.generated.held[n] = invoice

    def __delitem__(self, invoice_id: int) -> None:
        n = self._generated(invoice_id)
        if n is None:
            del self.added[invoice_id]
        else:
            self.gone.add(n)
            self.generated.release(n)

    def __contains__(self, invoice_id: object) -> bool:
        return invoice_id in self.added or self._generated(invoice_id) is not None

    def __iter__(self) -> Iterator[int]:
        yield from (FIRST_INVOICE + n for n in range(self.generated.count) if n not in self.gone)
        yield from self.added

    def __len__(self) -> int:
        return self.generated.count - len(self.gone) + len(self.added)

    def peek(self, invoice_id: int) -> Invoice | None:
        """The invoice, not to be changed; None if there is none."""
        n = self._generated(invoice_id)
        return self.added.get(invoice_id) if n is None else self.generated.peek(n)

    # --- what listings and summaries read ------------------------------------------------------
    def _kept(self) -> list[Invoice]:
        """The invoices held or added: the only ones that may differ from the generated ones as made."""
        return [*self.generated.held.values(), *self.added.values()]

    def basis(self) -> tuple[Any, ...]:
        """What listings depend on besides the generated invoices as made: deletions, the ids, projects, clients
        and update times of the invoices held or added."""
        return len(self.gone), tuple((i.id, i.project_id, i.client_id, i.updated_at) for i in self._kept())

    def chosen(self, project_id: int | None, since: dt.datetime | None) -> array[int]:
        """The ids, in order, of the invoices of `project_id` updated at or after `since` (None: any)."""
        skip = self.gone | set(self.generated.held)
        numbers: Iterable[int] = (n for n in range(self.generated.count) if n not in skip)
        if project_id is not None:
            numbers = (n for n in numbers if self.project[n] == project_id)
        if since is not None:
            after = (since - self.anchor) // _MICROSECOND + ((since - self.anchor) % _MICROSECOND > dt.timedelta(0))
            numbers = (n for n in numbers if self.updated[n] >= after)
        run = array("q", (FIRST_INVOICE + n for n in numbers))
        kept = [
            i.id
            for i in self._kept()
            if project_id in (None, i.project_id) and (since is None or i.updated_at >= since)
        ]
        for invoice_id in sorted(kept):
            run.insert(bisect.bisect_left(run, invoice_id), invoice_id)
        return run

    def figures(self, currency: Callable[[int, int], str | None]) -> Iterator[tuple[str | None, Decimal, int]]:
        """Every invoice's currency (`currency(project_id, client_id)`), total and line count."""
        skip = self.gone | set(self.generated.held)
        for n in range(self.generated.count):
            if n not in skip:
                project = self.project[n]
                yield currency(project, self.client_of[project]), Decimal(self.total[n]).scaleb(-2), self.lines[n]
        for i in self._kept():
            yield currency(i.project_id, i.client_id), figures(i)["amount_with_tax"], len(i.items)

    def of_client(self, client_id: int) -> list[int]:
        """The ids of the client's invoices."""
        skip = self.gone | set(self.generated.held)
        mine = {p for p, c in self.projects if c == client_id}
        ids = [FIRST_INVOICE + n for n in range(self.generated.count) if n not in skip and self.project[n] in mine]
        return ids + [i.id for i in self._kept() if i.client_id == client_id]

    def latest(self) -> dt.datetime:
        """The highest `updated_at`; ValueError when there is no invoice."""
        skip = self.gone | set(self.generated.held)
        offsets = [self.updated[n] for n in range(self.generated.count) if n not in skip]
        made = [self.anchor + max(offsets) * _MICROSECOND] if offsets else []
        return max([*made, *(i.updated_at for i in self._kept())])


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
