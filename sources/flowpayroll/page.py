"""Flow Payroll invoices, a page at a time, into Arrow rows: the vectorised twin of
`mapping.map_invoice`, which stays the reference (a test compares both, row for row).

Each page is read into columns in one pass. The values that repeat across a page (dates,
currency codes, `externalProviderStatus` words) are read once per distinct value, keyed by the
page's announced formats and by the value's type, with the record mapper's own functions; the
money columns are built straight into DECIMAL(18, 6) Arrow arrays from the decoded `Decimal`s,
so a value that does not fit exactly is refused by Arrow rather than rounded, and the line
totals (`lineAmount ± taxAmount`) are computed over the columns. A record of any shape the
columns do not take exactly (money as text other than a plain number, a value of an unexpected
type, a currency, date or timestamp the record mapper would refuse, an invoice whose status
cannot be derived, a client name that is not text) is left to the record mapper
(`PageRows.fallback`); so is a whole page Arrow refuses, or one without announced formats.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sources.flowpayroll import mapping
from sources.flowpayroll.settings import NAME as PROVIDER
from sources.shared.currency import iso_4217
from sources.shared.declaration import Context, PageRows
from sources.shared.model import INVOICE_ITEMS, INVOICES, arrow_table
from sources.shared.values import MONEY_PRECISION, MONEY_SCALE, ValueProblem, dumps

_DEC = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
_ZERO = Decimal(0)
_MISSING = object()
_PLAIN = re.compile(r"-?\d{1,12}(\.\d{1,6})?")  # a number as text that fits DECIMAL(18, 6)
_CACHE_LIMIT = 100_000


class _Fallback(Exception):
    """This record is left to the record mapper."""


def _cached(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`read` once per distinct key (a `ValueProblem` is remembered as well); the callers key by
    the value's type too: `True`, `1` and `Decimal("1.0")` are equal in Python but not to the
    record mapper."""
    seen: dict[Any, Any] = {}

    def cached(key: Any) -> Any:
        try:
            found = seen.get(key, _MISSING)
        except TypeError:  # not hashable: an unusual shape
            raise _Fallback from None
        if found is _MISSING:
            if len(seen) >= _CACHE_LIMIT:
                seen.clear()
            try:
                found = read(key)
            except ValueProblem as problem:
                found = problem
            seen[key] = found
        if isinstance(found, ValueProblem):
            raise _Fallback
        return found

    return cached


def _word(key: tuple[type, Any]) -> str | None:
    """What `externalProviderStatus` says, as `mapping.derive_status` reads it: `void`, `draft` or
    None (the amounts decide)."""
    _, value = key
    word = (value or "").strip().lower()
    if word in mapping.VOID_WORDS:
        return "void"
    if word in mapping.DRAFT_WORDS:
        return "draft"
    return None


def _date(key: tuple[mapping.Formats, str]) -> dt.date | None:
    formats, value = key
    return mapping.parse_date(value, formats)


def _currency(key: tuple[type, Any]) -> str:
    return iso_4217(key[1], field="currencyCode")


_read_word = _cached(_word)
_read_date = _cached(_date)
_read_currency = _cached(_currency)


def _optional_money(value: Any) -> Any:
    """A money value the columns take as it is: an exact finite `Decimal` or an integer (Arrow
    checks that it fits), None, or a plain number as text (`"12.30"`, read exactly; `""` is
    None); anything else (other text, a float, a boolean) is the record mapper's to judge."""
    kind = type(value)
    if kind is int or value is None:
        return value
    if kind is Decimal:
        # Arrow reads an amount below its scale as 0 when the exponent is extreme (1E-600000),
        # instead of refusing it: the record mapper's to refuse.
        if not value.is_finite() or (value and value.adjusted() < -MONEY_SCALE):
            raise _Fallback
        return value
    if kind is str:
        text = value.strip()
        if not text:
            return None
        if _PLAIN.fullmatch(text):
            return Decimal(text)
    raise _Fallback


def _money(value: Any) -> Any:
    """A required amount (`amount`, `subTotal`, `totalTax`): missing is the record mapper's to refuse."""
    found = _optional_money(value)
    if found is None:
        raise _Fallback
    return found


def _text(value: Any) -> str | None:
    """`values.to_text` for text, None and integers; other types are left to the record mapper."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return None
    if kind is int:
        return str(value)
    raise _Fallback


def _blank_to_none(value: Any) -> str | None:
    text = _text(value)
    return text if text else None


def _timestamp(value: Any, formats: mapping.Formats) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise _Fallback
    try:
        return mapping.parse_timestamp(value, formats)
    except ValueProblem:
        raise _Fallback from None


def _day(value: Any, formats: mapping.Formats) -> dt.date | None:
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise _Fallback
    found: dt.date | None = _read_date((formats, value))
    return found


# The columns `_columns` reads, in its order.
_INVOICE_COLUMNS = (
    "invoice_id",
    "client_id",
    "client_name",
    "number",
    "status",
    "provider_status",
    "issue_date",
    "due_date",
    "currency",
    "subtotal",
    "tax_total",
    "total",
    "balance_due",
    "created_at",
    "updated_at",
    "reference",
    "raw",
)
_LINE_COLUMNS = (
    "invoice_id",
    "line_number",
    "item_id",
    "description",
    "quantity",
    "unit_price",
    "tax_amount",
    "line_amount",
    "inclusive",
    "raw",
)


def map_invoice_page(records: Sequence[Any], context: Context) -> PageRows | None:
    """One page of `GET /clients/{clientId}/invoices` invoices into canonical Arrow rows."""
    formats = context.page
    if type(formats) is not mapping.Formats:
        return None  # formats the record mapper reads its own way: the whole page goes record by record
    rows: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    fallback: list[int] = []
    for position, record in enumerate(records):
        try:
            row, its_lines = _columns(record, formats, context.client_names)
        except _Fallback:
            fallback.append(position)
            continue
        rows.append(row)
        lines += its_lines
    inv = _transpose(_INVOICE_COLUMNS, rows)
    line = _transpose(_LINE_COLUMNS, lines)
    try:
        return _tables(context.account, inv, line, fallback)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None  # a value Arrow does not take exactly: the whole page goes record by record


def _transpose(names: Sequence[str], rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    if not rows:
        return {name: [] for name in names}
    return {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}


def _repeat(value: Any, n: int, kind: pa.DataType) -> pa.Array:
    return pa.array([value] * n, kind)


def _tables(account: str, inv: dict[str, list[Any]], line: dict[str, list[Any]], fallback: list[int]) -> PageRows:
    n, m = len(inv["invoice_id"]), len(line["invoice_id"])
    invoices = arrow_table(
        INVOICES,
        {
            **inv,
            "provider": _repeat(PROVIDER, n, pa.string()),
            "account": _repeat(account, n, pa.string()),
            # docs/canonical-model.md: Flow Payroll has one document type.
            "document_type": _repeat("invoice", n, pa.string()),
            "is_archived": _repeat(False, n, pa.bool_()),
            "subtotal": pa.array(inv["subtotal"], _DEC),
            "tax_total": pa.array(inv["tax_total"], _DEC),
            "total": pa.array(inv["total"], _DEC),
            "balance_due": pa.array(inv["balance_due"], _DEC),
            "discount_total": _repeat(_ZERO, n, _DEC),
            "withholding_total": _repeat(_ZERO, n, _DEC),
            "shipping_total": _repeat(_ZERO, n, _DEC),
        },
        n,
    )
    # mapping.map_line: total = lineAmount + taxAmount, subtotal = lineAmount; with `Inclusive` the
    # line amount holds its tax: subtotal = lineAmount - taxAmount, total = lineAmount. Without
    # both amounts, subtotal = lineAmount and total is NULL.
    amount = pa.array(line["line_amount"], _DEC)
    tax = pa.array(line["tax_amount"], _DEC)
    inclusive = pa.array(line["inclusive"], pa.bool_())
    both = pc.and_(pc.is_valid(amount), pc.is_valid(tax))
    exclusive_total = pc.add_checked(amount, tax).cast(_DEC)
    inclusive_subtotal = pc.subtract_checked(amount, tax).cast(_DEC)
    total = pc.if_else(inclusive, pc.if_else(both, amount, pa.scalar(None, _DEC)), exclusive_total)
    subtotal = pc.if_else(pc.and_(inclusive, both), inclusive_subtotal, amount)
    items = arrow_table(
        INVOICE_ITEMS,
        {
            "provider": _repeat(PROVIDER, m, pa.string()),
            "account": _repeat(account, m, pa.string()),
            "invoice_id": line["invoice_id"],
            "line_number": line["line_number"],
            "item_id": line["item_id"],
            "description": line["description"],
            "quantity": pa.array(line["quantity"], _DEC),
            "unit_price": pa.array(line["unit_price"], _DEC),
            "discount_amount": _repeat(_ZERO, m, _DEC),
            "tax_amount": tax,
            "subtotal": subtotal,
            "total": total,
            "raw": line["raw"],
        },
        m,
    )
    return PageRows(invoices, items, fallback)


def _status(word: str | None, total: Any, balance: Any) -> str:
    """`mapping.derive_status` on values already read; `_Fallback` where it would refuse."""
    if word is not None:
        return word
    if balance is None:
        raise _Fallback
    if balance <= _ZERO:
        return "paid"
    if balance >= total:
        return "open"
    return "partially_paid"


def _columns(
    record: Any, formats: mapping.Formats, client_names: Mapping[str, str | None]
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One invoice's values (in `_INVOICE_COLUMNS` order) and its lines' (`_LINE_COLUMNS`);
    `_Fallback` for anything the columns would not take exactly as `map_invoice` does."""
    if type(record) is not dict:
        raise _Fallback
    get = record.get
    invoice_id = _blank_to_none(get("id"))
    if invoice_id is None:
        raise _Fallback
    total, subtotal, taxes = _money(get("amount")), _money(get("subTotal")), _money(get("totalTax"))
    balance = _optional_money(get("balanceDue"))
    provider_status = get("externalProviderStatus")
    if provider_status is not None and type(provider_status) is not str:
        raise _Fallback
    status = _status(_read_word((str, provider_status or "")), total, balance)
    raw_client = _text(get("clientId"))
    client_name = client_names.get(raw_client or "")
    if client_name is not None and type(client_name) is not str:
        raise _Fallback
    currency = get("currencyCode")
    inclusive_word = get("lineAmountTypes")
    if inclusive_word is not None and type(inclusive_word) is not str:
        raise _Fallback
    inclusive = (inclusive_word or "").strip().lower() == "inclusive"
    row = (
        invoice_id,
        raw_client or None,
        client_name,
        _blank_to_none(get("invoiceNumber")),
        status,
        provider_status or None,
        _day(get("date"), formats),
        _day(get("dueDate"), formats),
        _read_currency((type(currency), currency)),
        subtotal,
        taxes,
        total,
        balance,
        _timestamp(get("createdDate"), formats),
        _timestamp(get("updatedDate"), formats),
        _blank_to_none(get("reference")),
        dumps(record),
    )
    items = get("lineItems")
    lines: list[tuple[Any, ...]] = []
    if items:
        if type(items) is not list:
            raise _Fallback
        for number, item in enumerate(items, 1):
            if type(item) is not dict:
                raise _Fallback
            it = item.get
            lines.append(
                (
                    invoice_id,
                    number,
                    _blank_to_none(it("id")),
                    _text(it("description")),
                    _optional_money(it("quantity")),
                    _optional_money(it("unitAmount")),
                    _optional_money(it("taxAmount")),
                    _optional_money(it("lineAmount")),
                    inclusive,
                    dumps(item),
                )
            )
    return row, lines
