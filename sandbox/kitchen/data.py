"""Seeded, realistic Kitchen workspace data: clients (users of group `client`) and invoices.

Objects have the fields and id shapes of the "List all invoices" page (docs/providers.md §3.4):
`in_`/`invi_`/`invti_`/`u_`/`bp_` + 24 hex digits, ISO 8601 timestamps with `+00:00`, money as
2-decimal `Decimal` (written as JSON numbers), item `quantity` as a string.

Unlike the doc sample (placeholder figures), the generated figures add up the way an invoicing
tool computes them: lines (quantity x amount per unit) - discounts + taxes + shipping = total.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
import re
from array import array
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any, overload

from sandbox.framework import Replay, days_until, money

EPOCH = dt.datetime(2023, 1, 2, 9, 0, tzinfo=dt.UTC)
FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kemi", "Lena"]
LAST = ["Silva", "Okafor", "Müller", "Nakamura", "Dubois", "Jensen", "Costa", "Walsh", "Novak", "Haddad"]
COMPANIES = ["Studio", "Labs", "& Co", "Design", "Media", "Partners"]
TITLES = [
    ("Brand identity", "Logo, palette and typography"), ("Website design", "Home and five inner pages"),
    ("Development sprint", "Two-week sprint"), ("Copywriting", "Landing page copy"), ("Consulting hour", None),
    ("Photography", "Half-day product shoot"), ("Hosting", "Annual plan"),
    ("Maintenance retainer", "Monthly retainer"),
]  # fmt: skip
QUANTITIES = ["1.00", "1.00", "1.00", "2.00", "3.00", "0.50", "2.50", "10.00", "12.00"]
TAXES = {
    "USD": [("State sales tax", Decimal("6.25")), ("City tax", Decimal("2.5"))],
    "EUR": [("VAT", Decimal("21")), ("Eco levy", Decimal("1"))],
    "GBP": [("VAT", Decimal("20"))],
}
CURRENCIES = tuple(TAXES)
SHIPPING = [Decimal(amount) for amount in ("0.00", "0.00", "0.00", "9.99", "19.99", "35.00")]
# Status mix of an agency's book: paid the most, then open, then the rest.
STATUS_WEIGHTS = [("paid", 40), ("open", 22), ("draft", 12), ("void", 10), ("uncollectible", 8)]
STATUSES, WEIGHTS = [s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS]
# The lifecycle timestamp each status sets (§3.4 [INF]).
STAMPED = {"paid": "paid_at", "void": "voided_at", "uncollectible": "marked_uncollectible_at", "open": "finalized_at"}
Ids = Callable[[str], str]


def stamp(when: dt.datetime) -> str:
    """Kitchen's timestamp format: `2024-03-13T09:16:53+00:00`."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def ids_from(rng: random.Random) -> Ids:
    """Kitchen-shaped ids from the seeded generator: a prefix and 24 hex digits."""
    return lambda prefix: f"{prefix}_{rng.getrandbits(96):024x}"


def make_client(rng: random.Random, ids: Ids, created: dt.datetime) -> dict[str, Any]:
    """A client user object as `GET /api/clients` lists it (docs/providers.md §3.2)."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    username = f"{first}.{last}".lower().replace("é", "e").replace("ü", "u")
    return {
        "id": ids("u"), "created_at": stamp(created),
        "updated_at": stamp(created + dt.timedelta(days=rng.randint(0, 30))), "email": f"{username}@example.com",
        "group": "client", "language": rng.choice(["en_US", "en_GB", "de_DE", "fr_FR"]), "name": f"{first} {last}",
        "phone": rng.choice([None, f"+1 555 01{rng.randint(10, 99)}"]), "role": "member",
        "timezone": rng.choice(["UTC", "Europe/Berlin", "America/New_York"]),
        "title": rng.choice([None, f"{last} {rng.choice(COMPANIES)}"]), "username": username,
    }  # fmt: skip


def make_item(rng: random.Random, ids: Ids, currency: str) -> dict[str, Any]:
    """One line: `amount` is the price of one unit; `quantity` is a string."""
    title, description = rng.choice(TITLES)
    return {
        "amount": money(Decimal(rng.randint(2000, 150000)) / 100), "currency": currency, "description": description,
        "id": ids("invi"), "quantity": rng.choice(QUANTITIES), "title": title,
    }  # fmt: skip


def recompute(invoice: dict[str, Any]) -> None:
    """Set discounts, taxes and the invoice's amounts from its lines, as the API would."""
    lines = money(sum((Decimal(i["quantity"]) * i["amount"] for i in invoice["items"]), Decimal("0")))
    discount = tax = Decimal("0.00")
    for item in invoice["discounts"]:
        rate = item["_rate"]
        item["amount"] = money(lines * rate / 100) if item["type"] == "percentage" else money(min(rate, lines))
        discount += item["amount"]
    net = lines - discount
    for item in invoice["tax_items"]:
        item["amount"] = money(net * item["_rate"] / 100)
        tax += item["amount"]
    invoice.update(discount_amount=discount, tax_amount=tax, total_amount=net + tax + invoice["shipping_amount"])
    invoice["amount"] = invoice["total_amount"] if invoice["status"] in ("open", "uncollectible") else Decimal("0.00")


def make_invoice(
    rng: random.Random,
    ids: Ids,
    number: int,
    client: str | None,
    creator: str,
    profile: str,
    created: dt.datetime,
    status: str,
) -> dict[str, Any]:
    """An invoice object with every field of the documented sample, consistent with `status`."""
    currency = rng.choice(["USD", "USD", "EUR", "EUR", "GBP"])
    items = [make_item(rng, ids, currency) for _ in range(rng.randint(1, 4))]
    if status == "draft" and rng.random() < 0.3:
        items = []
    discounts = []
    if items and rng.random() < 0.35:
        kind = rng.choice(["percentage", "percentage", "fixed"])
        rate = Decimal(rng.choice([5, 10, 15])) if kind == "percentage" else Decimal(rng.choice([25, 50]))
        title = f"{rate}{'%' if kind == 'percentage' else ''} off"
        discounts.append(
            {"amount": None, "currency": currency, "id": ids("invti"), "title": title, "type": kind, "_rate": rate}
        )
    taxes = [
        {"amount": None, "currency": currency, "id": ids("invti"), "title": title, "_rate": rate}
        for title, rate in TAXES[currency][: rng.randint(0, len(TAXES[currency]))]
    ]
    issue = created.replace(hour=0, minute=0, second=0)
    due_days = rng.choice([7, 14, 30])
    due = issue + dt.timedelta(days=due_days, hours=23, minutes=59, seconds=59)
    finalized = created + dt.timedelta(hours=rng.randint(1, 48))
    invoice: dict[str, Any] = {
        "archived_at": None, "amount": None, "billing_profile": profile, "charge_automatically": rng.random() < 0.2,
        "client": client, "created_at": stamp(created), "creator": creator, "currency": currency,
        "discount_amount": None, "discounts": discounts, "due_date": stamp(due), "due_date_in_days": due_days,
        "due_reminder_message": rng.choice([None, "Friendly reminder: this invoice is due soon."]),
        "due_reminder_send_date": None, "due_reminder_send_days": None, "due_reminder_sent_at": None, "file": None,
        "finalized_at": None if status == "draft" else stamp(finalized),
        "footer_notes": rng.choice([None, "Thank you for your business."]), "id": ids("in"), "is_external": False,
        "issue_date": stamp(issue), "items": items, "language": "en_US", "marked_uncollectible_at": None,
        "memo": rng.choice([None, None, "Payment by bank transfer, please quote the invoice number."]), "meta": None,
        # A draft gets its number when it is finalized (Stripe-like lifecycle, docs/providers.md §3.4 [INF]).
        "number": None if status == "draft" else f"PREFIX-{number:05d}", "paid_at": None,
        "payment_gateways": rng.choice([[], ["bank"], ["stripe_ach", "bank"], ["credit_card", "paypal"]]),
        "recurring_invoice": None, "status": status, "tax_amount": None, "tax_items": taxes,
        "shipping_amount": rng.choice(SHIPPING), "total_amount": None, "type": "invoice",
        "updated_at": stamp(finalized if status != "draft" else created), "voided_at": None,
        "visibility": rng.choice(["shared", "shared", "internal", "private"]),
    }  # fmt: skip
    later = finalized + dt.timedelta(days=rng.randint(1, 40))
    if status != "draft" and due_days and rng.random() < 0.4:
        invoice["due_reminder_send_days"] = 2
        invoice["due_reminder_send_date"] = stamp(due - dt.timedelta(days=2, hours=23, minutes=59, seconds=59))
    if status in ("paid", "void", "uncollectible"):
        invoice[STAMPED[status]] = invoice["updated_at"] = stamp(later)
        if rng.random() < 0.3:
            archived = later + dt.timedelta(days=rng.randint(1, 20))
            invoice["archived_at"] = invoice["updated_at"] = stamp(archived)
    recompute(invoice)
    return invoice


def make_clients(
    rng: random.Random, ids: Ids, count: int, start: dt.datetime
) -> tuple[list[dict[str, Any]], dt.datetime]:
    """`count` clients created one after another from `start`, and when the next record is created."""
    rows, created = [], start
    for _ in range(count):
        rows.append(make_client(rng, ids, created))
        created += dt.timedelta(hours=rng.randint(1, 72), minutes=rng.randint(0, 59))
    return rows, created


def latest_stamp(row: dict[str, Any]) -> str:
    """The record's latest timestamp (Kitchen's format sorts as time does), "" if none."""
    return max((v for k, v in row.items() if k.endswith("_at") and v), default="")


def generate(
    seed: int, clients: int, invoices: int, today: dt.date | None = None
) -> tuple[list[dict[str, Any]], Invoices]:
    """A workspace in time order, clients then invoices; `today`: every date shifted by whole days so that the
    sandbox's clock (a day after the latest timestamp) falls on that day."""
    rng = random.Random(seed)
    ids = ids_from(rng)
    creator, profile = ids("u"), ids("bp")
    client_rows, created = make_clients(rng, ids, clients, EPOCH)
    made = Invoices(rng, invoices, created, tuple(c["id"] for c in client_rows), creator, profile)
    latest = max([made.latest, *map(latest_stamp, client_rows)])
    if today is not None and latest:
        made.shift = days_until(today, dt.datetime.fromisoformat(latest).date() + dt.timedelta(days=1))
        rng = random.Random(seed)  # the same draws again: the same clients, created `shift` later
        ids = ids_from(rng)
        creator, profile = ids("u"), ids("bp")
        client_rows = make_clients(rng, ids, clients, EPOCH + made.shift)[0]
        made.latest = stamp(dt.datetime.fromisoformat(made.latest) + made.shift) if made.latest else ""
    return client_rows, made


class Invoices(Sequence[dict[str, Any]]):
    """A workspace's invoices in the order it keeps them (the generated ones, then the published and added ones),
    as a list: indexing and iterating hand out the records themselves, to change in place as the API's own rows.

    The generated ones (from 6 invoices every status, one archived and one with no client) are made one after
    another, each created after the one before, and kept as a `Replay` plus a few numbers each: a workspace of a
    million invoices holds none until one is asked for, and keeps the ones handed out. The list is a few parts:
    runs of generated invoices (`range`s of their numbers) and lists of other records.
    """

    def __init__(
        self, rng: random.Random, count: int, created: dt.datetime, clients: tuple[str, ...], creator: str, profile: str
    ) -> None:
        self.clients, self.creator, self.profile = clients, creator, profile
        self.shift = dt.timedelta(0)  # added to every generated date (`today`)
        self.latest = ""  # the latest timestamp of the generated invoices
        self.created, self.archived, self.ids = array("q"), bytearray(count), bytearray()
        self.currency, self.total, self.lines = bytearray(), array("q"), bytearray()
        self.generated = Replay(self._make, rng, count, created, self._observe)
        self.active = bytes(self.archived).translate(bytes.maketrans(b"\x00\x01", b"\x01\x00"))
        self.parts: list[range | list[dict[str, Any]]] = [range(count)] if count else []

    def _make(self, rng: random.Random, n: int, created: dt.datetime) -> tuple[dict[str, Any], dt.datetime]:
        """Invoice `n` of the generated ones, `created` the creation time of the record before it."""
        status = STATUSES[n] if n < len(STATUSES) else rng.choices(STATUSES, WEIGHTS)[0]
        clients = self.clients
        no_client = n == 5 or (clients and rng.random() < 0.05) or not clients
        client_id = None if no_client else rng.choice(clients)
        created += dt.timedelta(hours=rng.randint(2, 96), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
        args = (n + 1, client_id, self.creator, self.profile, created + self.shift, status)
        invoice = make_invoice(rng, ids_from(rng), *args)
        if n == 0:
            archived = dt.datetime.fromisoformat(invoice["paid_at"]) + dt.timedelta(days=3)
            invoice["archived_at"] = invoice["updated_at"] = stamp(archived)
        return invoice, created

    def _observe(self, n: int, invoice: dict[str, Any]) -> None:
        """Note what listings and summaries need of a generated invoice, as it is first made."""
        self.created.append(int((dt.datetime.fromisoformat(invoice["created_at"]) - EPOCH).total_seconds()))
        self.archived[n] = invoice["archived_at"] is not None
        self.ids += int(invoice["id"][3:], 16).to_bytes(12, "big")
        self.currency.append(CURRENCIES.index(invoice["currency"]))
        self.total.append(int(invoice["total_amount"] * 100))
        self.lines.append(len(invoice["items"]))
        self.latest = max(self.latest, latest_stamp(invoice))

    # --- the list the app keeps ---------------------------------------------------------------
    def _locate(self, index: int) -> tuple[int, int]:
        """The part holding list position `index` (0 <= index <= len), and the position within it."""
        for at, part in enumerate(self.parts):
            if index < len(part):
                return at, index
            index -= len(part)
        return len(self.parts), index

    def _cut(self, index: int) -> int:
        """Split the parts at list position `index`; the number of the part that now starts there."""
        at, within = self._locate(index)
        if not within:
            return at
        part = self.parts[at]
        self.parts[at : at + 1] = [part[:within], part[within:]]
        return at + 1

    def _runs(self) -> Iterator[range]:
        """The runs of generated invoices in the list."""
        return (part for part in self.parts if isinstance(part, range))

    def __len__(self) -> int:
        return sum(map(len, self.parts))

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        size = len(self)
        if not -size <= index < size:
            raise IndexError(index)
        at, within = self._locate(index % size)
        part = self.parts[at]
        return self.generated.hold(part[within]) if isinstance(part, range) else part[within]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for part in list(self.parts):
            if isinstance(part, range):
                yield from map(self.generated.hold, part)
            else:
                yield from part

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def insert(self, index: int, invoice: dict[str, Any]) -> None:
        size = len(self)
        at = self._cut(max(0, min(size, index + size if index < 0 else index)))
        before = self.parts[at - 1] if at else None
        if isinstance(before, list):
            before.append(invoice)
        else:
            self.parts.insert(at, [invoice])

    def append(self, invoice: dict[str, Any]) -> None:
        self.insert(len(self), invoice)

    def remove(self, invoice: dict[str, Any]) -> None:
        """Remove `invoice`, one of the records handed out."""
        for at, part in enumerate(self.parts):
            if isinstance(part, list):
                index = next((i for i, r in enumerate(part) if r is invoice), None)
                if index is None:
                    continue
                del part[index]
            else:
                n = next((n for n, r in self.generated.held.items() if r is invoice and n in part), None)
                if n is None:
                    continue
                self.generated.release(n)
                self.parts[at : at + 1] = [part[: n - part.start], part[n - part.start + 1 :]]
            self.parts = [p for p in self.parts if p]
            return
        raise ValueError("Invoices.remove(x): x not in list")

    def find(self, record_id: str) -> int | dict[str, Any] | None:
        """The first invoice with that id: a generated one's number, else the record, else None."""
        numbers = {n for n, r in self.generated.held.items() if r["id"] == record_id}
        if re.fullmatch(r"in_[0-9a-f]{24}", record_id):
            key, at = int(record_id[3:], 16).to_bytes(12, "big"), 0
            while (at := self.ids.find(key, at)) >= 0:
                if at % 12 == 0 and at // 12 not in self.generated.held:
                    numbers.add(at // 12)
                at += 1
        for part in self.parts:
            if isinstance(part, range):
                found = [n for n in numbers if n in part]
                if found:
                    return min(found)
            elif (record := next((r for r in part if r["id"] == record_id), None)) is not None:
                return record
        return None

    def record(self, found: int | dict[str, Any]) -> dict[str, Any]:
        """The invoice `find` found, not to be changed."""
        return self.generated.peek(found) if isinstance(found, int) else found

    # --- what listings and summaries read ------------------------------------------------------
    def _others(self) -> list[dict[str, Any]]:
        """The records that are not generated invoices in their place: published, added, moved."""
        return [r for part in self.parts if isinstance(part, list) for r in part]

    def basis(self) -> tuple[Any, ...]:
        """What the listings' order depends on besides the generated invoices as made: the parts of the list, and
        the creation, id and archiving of the records handed out or added."""
        held = tuple((n, r["created_at"], r["id"], r["archived_at"] is None) for n, r in self.generated.held.items())
        others = tuple((id(r), r["created_at"], r["id"], r["archived_at"] is None) for r in self._others())
        return tuple((p.start, p.stop) for p in self._runs()), held, others

    def _key(self, n: int) -> tuple[str, str]:
        """A generated invoice's (created_at, id) as made."""
        created = stamp(EPOCH + self.shift + dt.timedelta(seconds=self.created[n]))
        return created, f"in_{int.from_bytes(self.ids[n * 12 : n * 12 + 12], 'big'):024x}"

    def _moved(self) -> set[int]:
        """Generated invoices held and changed where listings look: their creation, id or archiving."""
        return {
            n
            for n, r in self.generated.held.items()
            if (r["created_at"], r["id"]) != self._key(n) or (r["archived_at"] is not None) != self.archived[n]
        }

    def newest_first(self, state: str) -> tuple[array[int], list[dict[str, Any]]]:
        """The listing of `state` (`all`, `active`, `archived`) by creation, newest first (§3.3 [DOC]): codes, a
        generated invoice's number or -1 - an index in the second list, the others' records."""
        count, moved = self.generated.count, self._moved()
        chosen = b"\x01" * count if state == "all" else self.active if state == "active" else self.archived
        keep = bytearray(count)
        for part in self._runs():
            keep[part.start : part.stop] = chosen[part.start : part.stop]
        for n in moved:
            keep[n] = 0
        run = array("q", itertools.compress(range(count), keep))
        others = [*self._others(), *(self.generated.held[n] for n in sorted(moved))]
        if state != "all":
            others = [r for r in others if (r["archived_at"] is None) == (state == "active")]
        others.sort(key=lambda r: (r["created_at"], r["id"]))
        codes, done = array("q"), 0
        for index, invoice in enumerate(others):
            at = bisect.bisect_left(run, (invoice["created_at"], invoice["id"]), key=self._key)
            codes.extend(run[done:at])
            codes.append(-1 - index)
            done = at
        codes.extend(run[done:])
        codes.reverse()
        return codes, others

    def figures(self) -> Iterator[tuple[str, Decimal, int]]:
        """Every invoice's currency, total and line count."""
        held = self.generated.held
        for part in self.parts:
            for n_or_record in part:
                if isinstance(n_or_record, dict):
                    record = n_or_record
                elif n_or_record in held:
                    record = held[n_or_record]
                else:
                    n = n_or_record
                    yield CURRENCIES[self.currency[n]], Decimal(self.total[n]).scaleb(-2), self.lines[n]
                    continue
                yield record["currency"], record["total_amount"], len(record["items"])
