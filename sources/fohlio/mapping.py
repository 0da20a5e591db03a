"""Pure functions from Fohlio payloads to canonical rows. No I/O, no config, inputs untouched.

Every quirk handled here carries a comment naming where it is documented (docs/providers.md §4).
A value that cannot be read without guessing raises `ValueProblem`; the source reports it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sources.shared.currency import iso_4217
from sources.shared.model import MappedInvoice
from sources.shared.structure import Reads
from sources.shared.values import (
    ValueProblem,
    parse_date,
    parse_timestamp,
    to_decimal,
    to_text,
)

# docs/canonical-model.md, status mapping: overdue is derived in queries, revised is superseded.
# docs/providers.md §4.3 [DOC]: an invoice lists its lines in `items`.
LINES = "items"

STATUS_MAP: dict[str, str] = {
    "draft": "draft",
    "sent": "open",
    "overdue": "open",
    "paid_partially": "partially_paid",
    "paid": "paid",
    "deposited": "paid",
    "void": "void",
    "revised": "void",
}

# Keys of a contact's free-form `data` that may hold a tax number; the docs leave `data` open.
_TAX_ID_KEYS = ("tax_id", "vat_number", "vat", "tax_number", "ein")


def client_categories(client: Mapping[str, Any]) -> list[str]:
    """The category types of a contact, whichever shape it comes in.

    docs/providers.md §4.4 [DOC]: the list endpoint embeds `categories[]`, the single GET and
    `/contacts` a single `category` object: schema drift, so both are read.
    """
    found: list[str] = []
    single = client.get("category")
    if isinstance(single, Mapping) and single.get("type"):
        found.append(str(single["type"]))
    many = client.get("categories")
    if isinstance(many, list):
        found.extend(str(c["type"]) for c in many if isinstance(c, Mapping) and c.get("type"))
    return list(dict.fromkeys(found))


def _by_priority(entries: Any) -> list[Mapping[str, Any]]:
    # docs/providers.md §4.4 [DOC]: list pages flag entries with `priority`; others have no flag.
    if not isinstance(entries, list):
        return []
    rows = [e for e in entries if isinstance(e, Mapping)]
    return sorted(rows, key=lambda e: e.get("priority") is not True)


def _first(entries: Iterable[Mapping[str, Any]], key: str) -> str | None:
    for entry in entries:
        value = entry.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def map_client(contact: Mapping[str, Any], *, provider: str, account: str) -> dict[str, Any]:
    """A `/contacts` record of the `client` category → a canonical `clients` row.

    `email` is the first person's email (priority people first), `country` the first
    address's country (priority addresses first), `tax_id` a tax key of `data` when present.
    """
    client_id = to_text(contact.get("id"))
    if not client_id:
        raise ValueProblem("contact without an id")
    raw_data = contact.get("data")
    data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
    tax_id = next((to_text(data[k]) for k in _TAX_ID_KEYS if data.get(k) not in (None, "")), None)
    return {
        "provider": provider,
        "account": account,
        "client_id": client_id,
        "name": to_text(contact.get("name")),
        "email": _first(_by_priority(contact.get("people")), "email"),
        "country": _first(_by_priority(contact.get("addresses")), "country"),
        "tax_id": tax_id,
        # docs/providers.md §4.2 [DOC]: contacts document no timestamps; read them if they appear.
        "created_at": parse_timestamp(contact.get("created_at"), field="created_at"),
        "updated_at": parse_timestamp(contact.get("updated_at"), field="updated_at"),
    }


def currency_code(value: Any, *, field: str) -> str | None:
    """An ISO 4217 code from `"usd"`, `"USD"` or `{"iso_code": "USD"}`; None when absent.

    Raises:
        ValueProblem: a value is present but is not a code of the ISO 4217 list
            (`sources/shared/currency.py`: three letters are not enough).
    """
    if isinstance(value, Mapping):
        value = value.get("iso_code")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return iso_4217(value, field=field)


def project_currencies(team: Any) -> dict[str, str]:
    """Project id → ISO code from the `GET /team` dump, for projects that enable a currency.

    docs/providers.md §4.4 [DOC team dump]: projects carry
    `project_currency{enabled, currency{id, iso_code, name}}`. A disabled project currency, or
    one without a readable code, is left out: the client's or the account's currency applies.
    """
    if not isinstance(team, Mapping):
        return {}
    projects = team.get("projects")
    if projects is None and isinstance(team.get("team"), Mapping):
        projects = team["team"].get("projects")
    found: dict[str, str] = {}
    for project in projects if isinstance(projects, list) else []:
        if not isinstance(project, Mapping):
            continue
        setting = project.get("project_currency")
        if not isinstance(setting, Mapping) or setting.get("enabled") is not True:
            continue
        try:
            code = currency_code(setting.get("currency"), field="project_currency.currency.iso_code")
        except ValueProblem:
            continue
        if code and project.get("id") is not None:
            found[str(project["id"])] = code
    return found


def resolve_currency(invoice: Mapping[str, Any], projects: Mapping[str, str], fallback: str | None) -> str:
    """The invoice's currency: its project's, else its client's, else the configured one.

    docs/providers.md §4.4 [DOC support]: currency is not on the invoice; it is set per client or
    per project. A project that enables its own currency overrides the client's.

    Raises:
        ValueProblem: no source gives a currency, or the client's value is not an ISO code.
    """
    project_id = to_text(invoice.get("project_id"))
    if project_id is not None and project_id in projects:
        return projects[project_id]
    client = invoice.get("client")
    data = client.get("data") if isinstance(client, Mapping) else None
    if isinstance(data, Mapping):
        code = currency_code(data.get("currency"), field="client.data.currency")
        if code:
            return code
    if fallback and fallback.strip():
        return iso_4217(fallback, field="configured currency (sources.fohlio.currency)")
    raise ValueProblem("currency unknown: neither the project nor the client sets one and no currency is configured")


def error_message(body: Any) -> str | None:
    """The API's own words in a body that carries an error instead of records, or None.

    docs/providers.md §4.5 [DOC]: only `401 Unauthorized` is documented, with no body schema; lists
    are bare JSON arrays (§4.2, §4.3). A 200 (or error) whose body is an object such as
    `{"error": "..."}`, `{"message": "..."}` or `{"errors": [...]}` is read for its words; a list of
    records has none.
    """
    if not isinstance(body, Mapping):
        return None
    found: list[str] = []
    for key in ("error", "message", "errors", "detail"):
        value = body.get(key)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, Mapping):
                item = item.get("message") or item.get("error") or item.get("detail")
            if isinstance(item, str) and item.strip():
                found.append(item.strip())
    return "; ".join(dict.fromkeys(found)) or None


def _required_amount(invoice: Mapping[str, Any], key: str) -> Decimal:
    # docs/providers.md §4.4 [DOC]: `amount`, `tax_amount`, `amount_with_tax` are numbers, never null in
    # the schema; docs/canonical-model.md: a record missing one is reported, not half-filled.
    value = to_decimal(invoice.get(key), field=key)
    if value is None:
        raise ValueProblem(f"{key}: missing or null")
    return value


def due_date(terms: Any) -> dt.date | None:
    """The earliest `payment_terms[].due_date`, else None.

    docs/providers.md §4.4 [DOC]: terms carry `{id, amount (a string), due_date, payment_terms}`
    and no paid flag, so which term is still unpaid cannot be told from the invoice: the due
    date is the earliest term's date, as docs/canonical-model.md states for Fohlio.
    """
    dates = [
        parse_date(term.get("due_date"), field="payment_terms[].due_date")
        for term in (terms if isinstance(terms, list) else [])
        if isinstance(term, Mapping)
    ]
    known = [d for d in dates if d is not None]
    return min(known) if known else None


def map_item(
    item: Mapping[str, Any], line_number: int, *, provider: str, account: str, invoice_id: str
) -> dict[str, Any]:
    """One `items[]` entry → a canonical `invoice_items` row.

    The line has no total or tax: `taxable`/`second_taxable` are flags whose rates the invoice
    does not carry (docs/providers.md §4.4 [INF]), so they stay in `raw`.
    """
    quantity = to_decimal(item.get("quantity"), field="items[].quantity")
    price = to_decimal(item.get("price"), field="items[].price")
    subtotal = (
        to_decimal(quantity * price, field="items[].quantity * price")
        if quantity is not None and price is not None
        else None
    )
    return {
        "provider": provider,
        "account": account,
        "invoice_id": invoice_id,
        "line_number": line_number,
        "item_id": to_text(item.get("id")),
        "name": to_text(item.get("name")),
        "description": to_text(item.get("description")),
        "quantity": quantity,
        "unit": to_text(item.get("unit_type")),
        "unit_price": price,
        "discount_amount": Decimal(0),
        "tax_rate": None,
        "tax_amount": None,
        "subtotal": subtotal,
        "total": None,
    }


def map_invoice(invoice: Mapping[str, Any], *, provider: str, account: str, currency: str) -> MappedInvoice:
    """A `/client_invoices` record → canonical `invoices` row and its `invoice_items` rows.

    Args:
        invoice: the provider's invoice object, untouched.
        provider, account: the key prefix.
        currency: the ISO code `resolve_currency` found for it.

    Raises:
        ValueProblem: an unknown status, a missing id, a missing or null `amount`, `tax_amount` or
            `amount_with_tax`, an unreadable date or amount.
    """
    invoice_id = to_text(invoice.get("id"))
    if not invoice_id:
        raise ValueProblem("invoice without an id")
    provider_status = to_text(invoice.get("status"))
    status = STATUS_MAP.get(provider_status or "")
    if status is None:
        raise ValueProblem(f"status: {provider_status!r} is not a documented Fohlio status")
    raw_client, raw_items = invoice.get("client"), invoice.get(LINES)
    client: Mapping[str, Any] = raw_client if isinstance(raw_client, Mapping) else {}
    items: list[Any] = raw_items if isinstance(raw_items, list) else []
    row = {
        "provider": provider,
        "account": account,
        "invoice_id": invoice_id,
        "client_id": to_text(client.get("id")),
        "client_name": to_text(client.get("name")),
        "number": to_text(invoice.get("label")) or None,
        "document_type": "invoice",
        "status": status,
        "provider_status": provider_status,
        "is_archived": False,
        # docs/providers.md §4.4 [INF]: `invoice_date` has no documented format; ISO dates and
        # timestamps are both read, a timestamp keeping the day written in its own offset.
        "issue_date": parse_date(invoice.get("invoice_date"), field="invoice_date"),
        "due_date": due_date(invoice.get("payment_terms")),
        "currency": currency,
        "subtotal": _required_amount(invoice, "amount"),
        "discount_total": Decimal(0),
        "tax_total": _required_amount(invoice, "tax_amount"),
        "withholding_total": Decimal(0),
        "shipping_total": Decimal(0),
        "total": _required_amount(invoice, "amount_with_tax"),
        "balance_due": to_decimal(invoice.get("balance"), field="balance"),
        "created_at": parse_timestamp(invoice.get("created_at"), field="created_at"),
        "updated_at": parse_timestamp(invoice.get("updated_at"), field="updated_at"),
        "paid_at": None,
        "voided_at": None,
        "reference": None,
        "notes": to_text(invoice.get("note")),
    }
    lines = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            # A line that is not an object cannot be read: the invoice waits, whole, in unmapped_records.
            raise ValueProblem(f"{LINES}[{n}]: expected an object, got {type(item).__name__}")
        lines.append(map_item(item, n, provider=provider, account=account, invoice_id=invoice_id))
    return MappedInvoice(row, lines)


# What this mapping reads of a record, per record type (sources/shared/structure.py, `Reads`): a field
# here that vanishes from the API's payloads is an error of the `schema_drift` check (docs/checks.md).
READS = Reads(
    invoice=(
        "$.id",
        "$.status",
        "$.label",
        "$.invoice_date",
        "$.payment_terms",
        "$.payment_terms[].due_date",
        "$.amount",
        "$.tax_amount",
        "$.amount_with_tax",
        "$.balance",
        "$.created_at",
        "$.updated_at",
        "$.note",
        "$.project_id",
        "$.client",
        "$.client.id",
        "$.client.name",
        "$.client.data",
        "$.client.data.currency",
        "$.client.data.currency.iso_code",
        "$.items",
    ),
    line=(
        "$.items[].id",
        "$.items[].name",
        "$.items[].description",
        "$.items[].quantity",
        "$.items[].unit_type",
        "$.items[].price",
    ),
    client=(
        "$.id",
        "$.name",
        "$.created_at",
        "$.updated_at",
        "$.people",
        "$.people[].email",
        "$.people[].priority",
        "$.addresses",
        "$.addresses[].country",
        "$.addresses[].priority",
        "$.data",
        *(f"$.data.{key}" for key in _TAX_ID_KEYS),
    ),
)
