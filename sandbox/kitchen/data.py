"""Seeded, realistic Kitchen workspace data: clients (users of group `client`) and invoices.

Objects have the fields and id shapes of the "List all invoices" page (docs/providers.md §3.4):
`in_`/`invi_`/`invti_`/`u_`/`bp_` + 24 hex digits, ISO 8601 timestamps with `+00:00`, money as
2-decimal `Decimal` (written as JSON numbers), item `quantity` as a string.

Unlike the doc sample (placeholder figures), the generated figures add up the way an invoicing
tool computes them: lines (quantity x amount per unit) - discounts + taxes + shipping = total.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandbox.framework import money

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
SHIPPING = [Decimal(amount) for amount in ("0.00", "0.00", "0.00", "9.99", "19.99", "35.00")]
# Status mix of an agency's book: paid the most, then open, then the rest.
STATUS_WEIGHTS = [("paid", 40), ("open", 22), ("draft", 12), ("void", 10), ("uncollectible", 8)]
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


def generate(seed: int, clients: int, invoices: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A workspace in time order; from 6 invoices every status (one archived) and one with no client."""
    rng = random.Random(seed)
    ids = ids_from(rng)
    creator, profile = ids("u"), ids("bp")
    created = EPOCH
    client_rows = []
    for _ in range(clients):
        client_rows.append(make_client(rng, ids, created))
        created += dt.timedelta(hours=rng.randint(1, 72), minutes=rng.randint(0, 59))
    statuses, weights = [s for s, _ in STATUS_WEIGHTS], [w for _, w in STATUS_WEIGHTS]
    invoice_rows = []
    for n in range(invoices):
        status = statuses[n] if n < len(statuses) else rng.choices(statuses, weights)[0]
        no_client = n == 5 or (client_rows and rng.random() < 0.05) or not client_rows
        client_id = None if no_client else rng.choice(client_rows)["id"]
        created += dt.timedelta(hours=rng.randint(2, 96), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
        invoice = make_invoice(rng, ids, n + 1, client_id, creator, profile, created, status)
        if n == 0:
            archived = dt.datetime.fromisoformat(invoice["paid_at"]) + dt.timedelta(days=3)
            invoice["archived_at"] = invoice["updated_at"] = stamp(archived)
        invoice_rows.append(invoice)
    return client_rows, invoice_rows
