"""Seeded, lazy generation of an InvoiceXpress account's clients and documents.

Every document is generated on demand from `(seed, client, position)`, so an account of a
million documents costs no memory until it is listed, and the same seed always gives the same
account. Mutations made by tests (a status change, a removed line) are kept as overrides.

Shapes follow the documented list response (seed 000/001, docs/providers.md §1.4), with what public
captures and fixtures show (§1.5, §1.6): amounts sometimes sent as strings, drafts numbered `draft`,
`rascunho` or `""`, currency as its name in the API's "Currency codes" table ("U.S. dollar", "Polish
złoty"), four-decimal unit prices, withholding (`retention` as a percentage string) reducing `total`.
Sandbox choices no source shows (§1.8 [INF]): `archived` as 1/0, `null` in `reference`,
`observations`, `retention` and a line's `unit`, six-decimal line figures (`0.465612`).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from sandbox.framework import days_until, money

FIRST_CLIENT_ID = 1310176  # the documented example's client id (seed 000)
FIRST_DAY, DAYS = dt.date(2023, 1, 1), 1000  # documents are dated within DAYS days of FIRST_DAY

# Weighted tables: (value, ..., weight). Document types and statuses as the API names them.
TYPES = [
    ("Invoice", 50), ("InvoiceReceipt", 15), ("SimplifiedInvoice", 8), ("CreditNote", 9), ("DebitNote", 4),
    ("Receipt", 6), ("CashInvoice", 8),
]  # fmt: skip
STATUSES = [("draft", 8), ("final", 42), ("settled", 35), ("canceled", 7), ("second_copy", 4), ("deleted", 4)]
# ISO code → the name the API writes in `currency`, spelt as the "Currency codes" table of the
# official OpenAPI description spells it (docs/providers.md §1.6).
CURRENCIES = [
    ("EUR", "Euro", 80), ("USD", "U.S. dollar", 8), ("GBP", "Pound sterling", 5), ("PLN", "Polish złoty", 3),
    ("CHF", "Swiss franc", 2), ("BRL", "Brazilian real", 2),
]  # fmt: skip
TAX_RATES = [(23, "IVA23", 31597), (13, "IVA13", 31596), (6, "IVA6", 31595), (0, "IVA0", 31594)]
PRODUCTS = [
    ("Consulting", "hour", "Consulting services"), ("Website hosting", "month", "Managed hosting plan"),
    ("Design work", "hour", "Brand and layout design"), ("Licence", "unit", "Annual software licence"),
    ("Support plan", "month", "Priority support"), ("Training", "day", "On-site training"),
    ("Printing", "unit", "Brochures, A4, 100 pages"), ("Travel", "service", "Travel expenses"),
]  # fmt: skip
QUANTITIES = ["1", "1", "2", "3", "0.5", "1.5", "10", "40"]
DRAFT_NUMBERS = ["draft", "rascunho", ""]  # §1.4 [3P] and §1.6: all three occur
REFERENCES = ["", None, "Contract 2024"]  # plus a purchase order number
OBSERVATIONS = ["", None, "Thank you for your business.", "Pagamento por transferência."]
RETENTIONS = ["", None, "0.0", "0.0", "0.0", "25.0", "11.5"]  # a rate, on invoices only
COUNTRIES = ["Portugal", "Portugal", "Portugal", "Spain", "France", "United Kingdom", "United States"]
CITIES = ["Lisboa", "Porto", "Braga", "Coimbra", "Faro"]
FIRST = ["Ana", "João", "Maria", "Pedro", "Rita", "Tiago", "Sofia", "Miguel", "Inês", "Rui"]
LAST = ["Silva", "Santos", "Ferreira", "Pereira", "Costa", "Oliveira", "Martins", "Rodrigues"]
COMPANY = ["Lda", "SA", "Unipessoal Lda", "& Filhos"]
CURRENCY_NAMES = {iso: name for iso, name, _ in CURRENCIES}
ISO_CODES = {name: iso for iso, name, _ in CURRENCIES}  # the ISO code of each currency name written


def figures(items: list[dict[str, Any]], retention: str | None) -> dict[str, Decimal]:
    """A document's figures, in cents whatever its lines carry; `retention` (a rate) is withheld from `total`."""

    def total(key: str) -> Decimal:
        return money(sum((Decimal(i.get(key) or 0) for i in items), Decimal(0)))

    before, taxes, discount = total("subtotal"), total("tax_amount"), total("discount_amount")
    withheld = money(before * Decimal(retention) / 100) if retention else Decimal(0)
    figures = {"sum": before + discount, "discount": discount, "before_taxes": before, "taxes": taxes}
    return {**figures, "total": before + taxes - withheld}


def as_listed(document: dict[str, Any]) -> dict[str, Any]:
    """`document` as a listing writes it: each line's `unit_price` and `quantity` as a string.

    §1.4 [DOC]: the list schemas (`ClientsInvoicesResponse`, seeds 000/001) write them as strings (`"1.0"`),
    where the single-document schema (`InvoiceItem`) writes numbers; a whole number gets one decimal
    (`100` → `"100.0"`), as in the list example; any other keeps its digits (`24.3902`).
    """

    def text(value: Any) -> Any:
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            number = Decimal(value)
            return f"{number:.1f}" if number == number.to_integral_value() else f"{number}"
        return value

    items = [
        {**i, "unit_price": text(i.get("unit_price")), "quantity": text(i.get("quantity"))} for i in document["items"]
    ]
    return {**document, "items": items}


def _pick(rng: random.Random, weighted: list[tuple[Any, ...]]) -> Any:
    return rng.choices(weighted, weights=[w[-1] for w in weighted])[0][0]


class Account:
    """One InvoiceXpress account: `clients` clients and, per client, exactly `invoices_per_client`
    documents (so page counts are predictable) of `lines_per_invoice` (an inclusive range) lines,
    generated on demand from `seed`."""

    def __init__(
        self,
        seed: int,
        clients: int,
        invoices_per_client: int,
        lines_per_invoice: tuple[int, int],
        today: dt.date | None = None,
    ) -> None:
        self.seed, self.n_clients = seed, clients
        # `today`: the last day a document can be dated, every date shifted by the same whole days
        self.first_day = FIRST_DAY + days_until(today, FIRST_DAY + dt.timedelta(days=DAYS))
        self.invoices_per_client, self.lines_per_invoice = invoices_per_client, lines_per_invoice
        self.overrides: dict[int, dict[str, Any] | None] = {}  # changed (None: deleted) documents
        self.added: dict[int, int] = {}  # documents added per client index
        self.client_changes: dict[int, dict[str, Any]] = {}
        self.gone: dict[int, bool] = {}  # deleted client id -> still in the client listing

    def pristine(self) -> bool:
        """Every client's documents are exactly the generated ones."""
        return not self.overrides and not self.added

    def listed(self) -> list[int] | range:
        """The client indexes the client listing shows."""
        every = range(self.n_clients)
        if all(self.gone.values()):
            return every
        return [i for i in every if self.gone.get(self.client_id(i), True)]

    def client_id(self, index: int) -> int:
        return FIRST_CLIENT_ID + index

    def client_index(self, client_id: int) -> int | None:
        index = client_id - FIRST_CLIENT_ID
        return index if 0 <= index < self.n_clients else None

    def client(self, index: int) -> dict[str, Any]:
        rng = random.Random(self.seed * 7_919 + index)
        person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        name = f"{rng.choice(LAST)} {rng.choice(LAST)} {rng.choice(COMPANY)}" if rng.random() < 0.7 else person
        country, n = rng.choice(COUNTRIES), index + 1
        return {
            "id": self.client_id(index), "name": name, "code": f"C{n:05d}",
            "email": f"billing{n}@example.{'pt' if country == 'Portugal' else 'com'}",
            "language": "pt" if country == "Portugal" else "en",
            "address": f"Rua {rng.choice(LAST)}, {rng.randint(1, 300)}", "city": rng.choice(CITIES),
            "postal_code": f"{rng.randint(1000, 9999)}-{rng.randint(100, 999)}", "country": country,
            "fiscal_id": f"{rng.randint(100_000_000, 299_999_999)}", "website": "",
            "phone": f"+351 2{rng.randint(10_000_000, 99_999_999)}", "fax": "",
            "preferred_contact": {"name": person, "email": f"contact{n}@example.pt", "phone": ""},
            "observations": rng.choice(["", None]), "send_options": "1",  # documented as a string
            **self.client_changes.get(self.client_id(index), {}),
        }  # fmt: skip

    def invoice_id(self, client_index: int, position: int) -> int:
        return (client_index + 1) * 1_000_000 + position

    def locate(self, invoice_id: int) -> tuple[int, int]:
        return invoice_id // 1_000_000 - 1, invoice_id % 1_000_000

    def invoice(self, client_index: int, position: int) -> dict[str, Any] | None:
        """The document at `position` of a client's list, with any override (None when deleted)."""
        invoice_id = self.invoice_id(client_index, position)
        if invoice_id in self.overrides:
            return self.overrides[invoice_id]
        return self._generate(client_index, position)

    def client_invoices(self, client_index: int) -> list[dict[str, Any]]:
        positions = range(self.invoices_per_client + self.added.get(client_index, 0))
        return [i for p in positions if (i := self.invoice(client_index, p)) is not None]

    def _line(self, rng: random.Random) -> dict[str, Any]:
        """One line. Most are rounded to cents; some are left unrounded (a four-decimal unit price, as
        documented, and `tax_amount` to six decimals: `2.0244` × 23 % = `0.465612`, §1.8 [INF])."""
        product, unit, description = rng.choice(PRODUCTS)
        rate, tax_name, tax_id = rng.choice(TAX_RATES)
        unrounded = rng.random() < 0.1
        quantity = Decimal(rng.choice(["1", "2", "3"]) if unrounded else rng.choice(QUANTITIES))
        unit_price = Decimal(rng.randint(100, 99_999)).scaleb(-4 if unrounded else -2)
        discount_pct = 0 if unrounded else rng.choice([0, 0, 0, 0, 5, 10])
        round_ = (lambda d: d) if unrounded else money
        gross = round_(quantity * unit_price)
        discount_amount = round_(gross * discount_pct / 100)
        subtotal = gross - discount_amount
        tax_amount = round_(subtotal * rate / 100)
        return {
            "name": product,
            "description": description,
            "unit_price": f"{unit_price}",  # documented as a string ("1.0")
            "unit": unit if rng.random() < 0.9 else None,
            "quantity": f"{quantity:.1f}" if quantity == quantity.to_integral() else f"{quantity}",
            "tax": {"id": tax_id, "name": tax_name, "value": rate},
            "discount": discount_pct,
            "subtotal": subtotal,
            "tax_amount": tax_amount,
            "discount_amount": discount_amount,
            "total": subtotal + tax_amount,
        }

    def _generate(self, client_index: int, position: int) -> dict[str, Any]:
        rng = random.Random((self.seed * 1_000_003 + client_index) * 1_000_033 + position)
        client = self.client(client_index)
        invoice_id = self.invoice_id(client_index, position)
        doc_type, status = _pick(rng, TYPES), _pick(rng, STATUSES)
        if doc_type in ("InvoiceReceipt", "CashInvoice", "Receipt") and status == "final":
            status = "settled"
        currency = _pick(rng, CURRENCIES)
        day = self.first_day + dt.timedelta(days=rng.randint(0, DAYS))
        due = day + dt.timedelta(days=rng.choice([0, 15, 30, 60]))
        items = [self._line(rng) for _ in range(rng.randint(*self.lines_per_invoice))]
        retention = rng.choice(RETENTIONS) if doc_type == "Invoice" else rng.choice(["", None])
        as_strings = rng.random() < 0.12  # real responses sometimes carry amounts as strings [3P]

        def amount(value: Decimal) -> Decimal | str:
            return f"{value:.2f}" if as_strings else value

        number, draft = position + 1, status == "draft"
        archived = rng.random() < 0.12
        reference = rng.choice([*REFERENCES, f"PO-{rng.randint(1000, 9999)}"])
        return {
            "id": invoice_id, "status": status,
            "archived": int(archived) if rng.random() < 0.3 else archived,  # 1/0 on some endpoints [3P]
            "type": doc_type, "sequence_number": rng.choice(DRAFT_NUMBERS) if draft else f"{number}/A",
            "inverted_sequence_number": "" if draft else f"A/{number}",
            "atcud": "N/D" if draft else f"ABCD1234-{number}",
            "date": day.strftime("%d/%m/%Y"), "due_date": due.strftime("%d/%m/%Y"),
            "reference": reference, "observations": rng.choice(OBSERVATIONS), "retention": retention,
            "permalink": f"https://www.app.invoicexpress.com/documents/{invoice_id}{rng.getrandbits(64):016x}",
            "saft_hash": f"{rng.getrandbits(16):04x}",
            **{key: amount(value) for key, value in figures(items, retention).items()},
            "currency": CURRENCY_NAMES[currency],
            "client": {"id": client["id"], "name": client["name"], "country": client["country"]},
            "items": items,
            "sequence_id": str(rng.randint(10_000, 99_999)) if rng.random() < 0.7 else rng.randint(10_000, 99_999),
            "tax_exemption": "M07" if any(i["tax"]["value"] == 0 for i in items) else "",
        }  # fmt: skip
