"""Seeded, lazy generation of an InvoiceXpress account's clients and documents.

Every document is generated on demand from `(seed, client, position)`, so an account of a
million documents costs no memory until it is listed, and the same seed always gives the same
account. Mutations made by tests (a status change, a removed line) are kept as overrides.

Shapes follow the documented list response (seed 000/001, docs/providers.md §1.4) with the quirks
reported by real integrators: amounts sometimes sent as strings, `archived` as 1/0, drafts
numbered `draft`/`rascunho`, currency as a name ("Euro"), withholding (`retention` as a
percentage string) reducing `total`.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")

# Document types as the API names them, with how often they occur.
# fmt: off
TYPES = [
    ("Invoice", 50), ("InvoiceReceipt", 15), ("SimplifiedInvoice", 8), ("CreditNote", 9), ("DebitNote", 4),
    ("Receipt", 6), ("CashInvoice", 8),
]
# fmt: on
STATUSES = [("draft", 8), ("final", 42), ("settled", 35), ("canceled", 7), ("second_copy", 4), ("deleted", 4)]
# ISO code → the name the API writes in `currency` ("Euro" is documented; others [INF]).
CURRENCIES = [("EUR", "Euro", 85), ("USD", "US Dollar", 10), ("GBP", "Pound Sterling", 5)]
CURRENCY_NAMES = {iso: name for iso, name, _ in CURRENCIES}
TAX_RATES = [(23, "IVA23", 31597), (13, "IVA13", 31596), (6, "IVA6", 31595), (0, "IVA0", 31594)]
# fmt: off
PRODUCTS = [
    ("Consulting", "hour", "Consulting services"), ("Website hosting", "month", "Managed hosting plan"),
    ("Design work", "hour", "Brand and layout design"), ("Licence", "unit", "Annual software licence"),
    ("Support plan", "month", "Priority support"), ("Training", "day", "On-site training"),
    ("Printing", "unit", "Brochures, A4, 100 pages"), ("Travel", "service", "Travel expenses"),
]
# fmt: on
COUNTRIES = ["Portugal", "Portugal", "Portugal", "Spain", "France", "United Kingdom", "United States"]
FIRST = ["Ana", "João", "Maria", "Pedro", "Rita", "Tiago", "Sofia", "Miguel", "Inês", "Rui"]
LAST = ["Silva", "Santos", "Ferreira", "Pereira", "Costa", "Oliveira", "Martins", "Rodrigues"]
COMPANY = ["Lda", "SA", "Unipessoal Lda", "& Filhos"]


def _pick(rng: random.Random, weighted: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    return rng.choices(weighted, weights=[w[-1] for w in weighted])[0]


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ClientRecord:
    index: int
    id: int
    data: dict[str, Any]


class Account:
    """One InvoiceXpress account: clients and, per client, documents generated on demand.

    Args:
        seed: the generator's seed.
        clients: how many clients.
        invoices_per_client: documents per client (exact, so page counts are predictable).
        lines_per_invoice: inclusive range of lines per document.
    """

    def __init__(
        self,
        seed: int = 42,
        clients: int = 12,
        invoices_per_client: int = 9,
        lines_per_invoice: tuple[int, int] = (1, 5),
    ) -> None:
        self.seed = seed
        self.n_clients = clients
        self.invoices_per_client = invoices_per_client
        self.lines_per_invoice = lines_per_invoice
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

    # --- clients ------------------------------------------------------------------------

    def client_id(self, index: int) -> int:
        return 1310176 + index

    def client(self, index: int) -> ClientRecord:
        rng = random.Random(self.seed * 7_919 + index)
        person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        name = f"{rng.choice(LAST)} {rng.choice(LAST)} {rng.choice(COMPANY)}" if rng.random() < 0.7 else person
        country = rng.choice(COUNTRIES)
        # fmt: off
        data = {
            "id": self.client_id(index), "name": name, "code": f"C{index + 1:05d}",
            "email": f"billing{index + 1}@example.{'pt' if country == 'Portugal' else 'com'}",
            "language": "pt" if country == "Portugal" else "en",
            "address": f"Rua {rng.choice(LAST)}, {rng.randint(1, 300)}",
            "city": rng.choice(["Lisboa", "Porto", "Braga", "Coimbra", "Faro"]),
            "postal_code": f"{rng.randint(1000, 9999)}-{rng.randint(100, 999)}", "country": country,
            "fiscal_id": f"{rng.randint(100_000_000, 299_999_999)}", "website": "",
            "phone": f"+351 2{rng.randint(10_000_000, 99_999_999)}", "fax": "",
            "preferred_contact": {"name": person, "email": f"contact{index + 1}@example.pt", "phone": ""},
            "observations": "",
            "send_options": "1",  # documented as a string
            **self.client_changes.get(self.client_id(index), {}),
        }
        # fmt: on
        return ClientRecord(index, self.client_id(index), data)

    def client_index(self, client_id: int) -> int | None:
        index = client_id - 1310176
        return index if 0 <= index < self.n_clients else None

    # --- documents ------------------------------------------------------------------------

    def invoice_id(self, client_index: int, position: int) -> int:
        return (client_index + 1) * 1_000_000 + position

    def locate(self, invoice_id: int) -> tuple[int, int]:
        return invoice_id // 1_000_000 - 1, invoice_id % 1_000_000

    def invoice(self, client_index: int, position: int) -> dict[str, Any] | None:
        """The document at `position` of a client's list, with any test override applied
        (None when deleted)."""
        invoice_id = self.invoice_id(client_index, position)
        if invoice_id in self.overrides:
            return self.overrides[invoice_id]
        return self._generate(client_index, position)

    def client_invoices(self, client_index: int) -> list[dict[str, Any]]:
        out = []
        for position in range(self.invoices_per_client + self.added.get(client_index, 0)):
            invoice = self.invoice(client_index, position)
            if invoice is not None:
                out.append(invoice)
        return out

    def _generate(self, client_index: int, position: int) -> dict[str, Any]:
        rng = random.Random((self.seed * 1_000_003 + client_index) * 1_000_033 + position)
        client = self.client(client_index).data
        invoice_id = self.invoice_id(client_index, position)
        doc_type = _pick(rng, TYPES)[0]
        status = _pick(rng, STATUSES)[0]
        if doc_type in ("InvoiceReceipt", "CashInvoice", "Receipt") and status == "final":
            status = "settled"
        iso, _currency_name, _ = _pick(rng, CURRENCIES)
        day = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randint(0, 1000))
        due = day + dt.timedelta(days=rng.choice([0, 15, 30, 60]))

        items: list[dict[str, Any]] = []
        for _ in range(rng.randint(*self.lines_per_invoice)):
            product, unit, description = rng.choice(PRODUCTS)
            rate, tax_name, tax_id = rng.choice(TAX_RATES)
            quantity = Decimal(rng.choice(["1", "1", "2", "3", "0.5", "1.5", "10", "40"]))
            unit_price = Decimal(rng.randint(500, 250_000)) / 100
            if rng.random() < 0.1:
                unit_price = Decimal(rng.randint(100, 99_999)) / 10_000  # four-decimal unit prices occur
            gross = money(quantity * unit_price)
            discount_pct = rng.choice([0, 0, 0, 0, 5, 10])
            discount_amount = money(gross * discount_pct / 100)
            subtotal = gross - discount_amount
            tax_amount = money(subtotal * rate / 100)
            items.append(
                {
                    "name": product,
                    "description": description,
                    "unit_price": f"{unit_price}",  # documented as a string ("1.0")
                    "unit": unit,
                    "quantity": f"{quantity:.1f}" if quantity == quantity.to_integral() else f"{quantity}",
                    "tax": {"id": tax_id, "name": tax_name, "value": rate},
                    "discount": discount_pct,
                    "subtotal": subtotal,
                    "tax_amount": tax_amount,
                    "discount_amount": discount_amount,
                    "total": subtotal + tax_amount,
                }
            )
        gross_sum = sum((money(Decimal(i["quantity"]) * Decimal(i["unit_price"])) for i in items), Decimal(0))
        discount = sum((i["discount_amount"] for i in items), Decimal(0))
        before_taxes = sum((i["subtotal"] for i in items), Decimal(0))
        taxes = sum((i["tax_amount"] for i in items), Decimal(0))
        retention = rng.choice(["", "0.0", "0.0", "0.0", "25.0", "11.5"]) if doc_type == "Invoice" else ""
        withheld = money(before_taxes * Decimal(retention) / 100) if retention else Decimal(0)
        total = before_taxes + taxes - withheld

        as_strings = rng.random() < 0.12  # real responses sometimes carry amounts as strings [3P]

        def amount(value: Decimal) -> Decimal | str:
            return f"{value:.2f}" if as_strings else value

        number = position + 1
        sequence = rng.choice(["draft", "rascunho"]) if status == "draft" else f"{number}/A"
        archived_flag = rng.random() < 0.12
        return {
            "id": invoice_id,
            "status": status,
            "archived": int(archived_flag) if rng.random() < 0.3 else archived_flag,  # 1/0 on some endpoints [3P]
            "type": doc_type,
            "sequence_number": sequence,
            "inverted_sequence_number": "" if status == "draft" else f"A/{number}",
            "atcud": "N/D" if status == "draft" else f"ABCD1234-{number}",
            "date": day.strftime("%d/%m/%Y"),
            "due_date": due.strftime("%d/%m/%Y"),
            "reference": rng.choice(["", f"PO-{rng.randint(1000, 9999)}", "Contract 2024"]),
            "observations": rng.choice(["", "Thank you for your business.", "Pagamento por transferência."]),
            "retention": retention,
            "permalink": f"https://www.app.invoicexpress.com/documents/{invoice_id}{rng.getrandbits(64):016x}",
            "saft_hash": f"{rng.getrandbits(16):04x}",
            "sum": amount(gross_sum),
            "discount": amount(discount),
            "before_taxes": amount(before_taxes),
            "taxes": amount(taxes),
            "total": amount(total),
            "currency": CURRENCY_NAMES[iso],
            "client": {"id": client["id"], "name": client["name"], "country": client["country"]},
            "items": items,
            "sequence_id": str(rng.randint(10_000, 99_999)) if rng.random() < 0.7 else rng.randint(10_000, 99_999),
            "tax_exemption": "M07" if any(i["tax"]["value"] == 0 for i in items) else "",
        }


def iso_of(currency_name: str) -> str:
    for iso, name, _ in CURRENCIES:
        if name == currency_name:
            return iso
    raise KeyError(currency_name)
