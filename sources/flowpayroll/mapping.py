"""Flow Payroll payloads → canonical rows. Pure functions: no I/O, no config, inputs untouched.

Every quirk handled here carries a one-line comment naming where it is documented
(`docs/providers.md §2.x`, `docs/canonical-model.md`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sources.flowpayroll.settings import DEFAULT_DATE_FORMAT, DEFAULT_DATETIME_FORMAT
from sources.flowpayroll.settings import NAME as PROVIDER_NAME
from sources.shared.currency import iso_4217
from sources.shared.model import MappedInvoice
from sources.shared.structure import Reads
from sources.shared.values import ValueProblem, to_decimal, to_text

ZERO = Decimal(0)
# docs/providers.md §2.3 [DOC]: an invoice lists its lines in `lineItems`.
LINES = "lineItems"

# docs/providers.md §2.4 [INF]: invoices sync to an accounting system (Xero) and
# `externalProviderStatus` carries its status word; these words say the invoice is void or
# not yet issued. Matched case-insensitively.
VOID_WORDS = frozenset({"voided", "void", "deleted"})
DRAFT_WORDS = frozenset({"draft", "submitted"})


# --- date and time patterns -------------------------------------------------------------------

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_OFFSET = r"(?P<offset>Z|z|[+-]\d{2}(?::?\d{2})?)"
_PATTERN_TOKEN = re.compile(
    r"'(?:[^']|'')*'|yyyy|yy|MMMM|MMM|MM|M|dd|d|HH|H|hh|h|mm|m|ss|s|f{1,7}|F{1,7}|S{1,9}|tt|a"
    r"|XXX|XX|X|xxx|xx|zzz|zz|K|Z|.",
    re.S,
)
_TOKEN_REGEX = {
    "yyyy": r"(?P<year>\d{4})",
    "yy": r"(?P<year2>\d{2})",
    "MMMM": r"(?P<monthname>[A-Za-z]+)",
    "MMM": r"(?P<monthname>[A-Za-z]{3})",
    "MM": r"(?P<month>\d{2})",
    "M": r"(?P<month>\d{1,2})",
    "dd": r"(?P<day>\d{2})",
    "d": r"(?P<day>\d{1,2})",
    "HH": r"(?P<hour>\d{2})",
    "H": r"(?P<hour>\d{1,2})",
    "hh": r"(?P<hour12>\d{2})",
    "h": r"(?P<hour12>\d{1,2})",
    "mm": r"(?P<minute>\d{2})",
    "m": r"(?P<minute>\d{1,2})",
    "ss": r"(?P<second>\d{2})",
    "s": r"(?P<second>\d{1,2})",
    "tt": r"(?P<ampm>[AaPp][Mm])",
    "a": r"(?P<ampm>[AaPp][Mm])",
}
# Java's `Z`/`X`/`x` and .NET's `zzz`/`K` are offsets; in .NET an unquoted `Z` is a literal `Z`
# (UTC). Accepting either reading for all of them parses both families of pattern.
_OFFSET_TOKENS = frozenset({"XXX", "XX", "X", "xxx", "xx", "zzz", "zz", "K", "Z"})


@dataclass(frozen=True)
class DatePattern:
    """A Java/.NET-style date pattern (`yyyy-MM-dd'T'HH:mm:ss.fffZ`) compiled to a regex."""

    pattern: str
    regex: re.Pattern[str]

    def parse(self, text: str) -> dt.datetime:
        """Read `text` written in this pattern.

        Returns:
            A datetime, aware when the pattern has an offset, naive otherwise.

        Raises:
            ValueProblem: the text does not follow the pattern or is not a real date.
        """
        match = self.regex.fullmatch(text.strip())
        if not match:
            raise ValueProblem(f"{text!r} does not match the announced format {self.pattern!r}")
        parts = {k: v for k, v in match.groupdict().items() if v is not None}
        try:
            return _build(parts)
        except (ValueError, KeyError):
            raise ValueProblem(f"{text!r} is not a valid date for format {self.pattern!r}") from None


def _build(parts: dict[str, str]) -> dt.datetime:
    year = int(parts["year"]) if "year" in parts else 2000 + int(parts["year2"])
    if "month" in parts:
        month = int(parts["month"])
    else:
        name = parts["monthname"].lower()
        month = next(i for i, m in enumerate(_MONTHS, 1) if m == name or m[:3] == name)
    hour = int(parts.get("hour", 0))
    if "hour12" in parts:
        hour = int(parts["hour12"]) % 12 + (12 if parts.get("ampm", "am").lower() == "pm" else 0)
    fraction = parts.get("fraction", "")
    micro = int((fraction + "000000")[:6]) if fraction else 0
    tz: dt.tzinfo | None = None
    if "offset" in parts:
        tz = _offset(parts["offset"])
    return dt.datetime(
        year,
        month,
        int(parts["day"]),
        hour,
        int(parts.get("minute", 0)),
        int(parts.get("second", 0)),
        micro,
        tzinfo=tz,
    )


def _offset(text: str) -> dt.timezone:
    if text in ("Z", "z"):
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


@lru_cache(maxsize=64)
def compile_pattern(pattern: str) -> DatePattern:
    """Translate a Java/.NET date pattern into a regex-backed parser.

    Supported: `yyyy yy MMMM MMM MM M dd d HH H hh h mm m ss s tt a`, fractions `f…`/`F…`
    (.NET) and `S…` (Java), offsets `Z X XX XXX x xx xxx zz zzz K`, quoted literals
    (`'T'`, `''` for a quote); every other character is a literal. A fraction, with the `.` or
    `,` before it, is optional and has 1 to 9 digits, whatever the pattern's count: the API
    announces `.fff` and also writes `05:31:56Z`. An offset token reads `Z` or `±hh:mm`.

    Raises:
        ValueProblem: the pattern repeats a component or has no year, month and day.
    """
    regex: list[str] = []
    seen: set[str] = set()
    for token in _PATTERN_TOKEN.findall(pattern):
        if token.startswith("'") and len(token) >= 2 and token.endswith("'"):
            literal = token[1:-1].replace("''", "'") if token != "''" else "'"
            regex.append(re.escape(literal))
            continue
        if token in _OFFSET_TOKENS:
            piece, group = _OFFSET, "offset"
        elif token[0] in "fF" or (token[0] == "S" and token.strip("S") == ""):
            # docs/providers.md §2.4: the announced `…ss.fffZ` is also met without fractional seconds
            # (`2023-11-07T05:31:56Z`) and with more or fewer digits: the fraction and the separator
            # before it are optional, 1 to 9 digits (beyond microseconds, digits are dropped).
            if regex and regex[-1] in (re.escape("."), re.escape(",")):
                regex.pop()
                piece = r"(?:[.,](?P<fraction>\d{1,9}))?"
            else:
                piece = r"(?P<fraction>\d{1,9})?"
            group = "fraction"
        elif token in _TOKEN_REGEX:
            piece = _TOKEN_REGEX[token]
            group = piece.split(">")[0].removeprefix("(?P<")
        else:
            regex.append(re.escape(token))
            continue
        if group in seen:
            raise ValueProblem(f"date format {pattern!r} repeats a component ({token})")
        seen.add(group)
        regex.append(piece)
    if not ({"year", "year2"} & seen and {"month", "monthname"} & seen and "day" in seen):
        raise ValueProblem(f"date format {pattern!r} lacks a year, month or day")
    return DatePattern(pattern, re.compile("".join(regex)))


@dataclass(frozen=True)
class Formats:
    """The date and timestamp patterns a response announces in its metadata."""

    date: str = DEFAULT_DATE_FORMAT
    date_time: str = DEFAULT_DATETIME_FORMAT


def formats_from(body: Any) -> Formats:
    """Read `dateFormat`/`dateTimeFormat` from a response.

    docs/providers.md §2.5 [DOC]: `content.metadata` on the response-format page, a top-level
    `metadata` in the Billing OpenAPI schema; either is accepted, `content.metadata` first, and
    the documented example formats stand in for a missing value.
    """
    date_format = date_time_format = None
    if isinstance(body, dict):
        content = body.get("content")
        for meta in (
            (content or {}).get("metadata") if isinstance(content, dict) else None,
            body.get("metadata"),
        ):
            if isinstance(meta, dict):
                date_format = date_format or meta.get("dateFormat") or None
                date_time_format = date_time_format or meta.get("dateTimeFormat") or None
    return Formats(str(date_format or DEFAULT_DATE_FORMAT), str(date_time_format or DEFAULT_DATETIME_FORMAT))


def parse_date(value: Any, formats: Formats, *, field: str = "date") -> dt.date | None:
    """A calendar date in the announced `dateFormat`; a value written as a timestamp
    (`dateTimeFormat`) keeps the day written in its own offset (docs/canonical-model.md)."""
    if value is None or value == "":
        return None
    text = str(value)
    try:
        return compile_pattern(formats.date).parse(text).date()
    except ValueProblem:
        pass
    try:
        return compile_pattern(formats.date_time).parse(text).date()
    except ValueProblem:
        raise ValueProblem(f"{field}: {text!r} matches neither {formats.date!r} nor {formats.date_time!r}") from None


def parse_timestamp(value: Any, formats: Formats, *, field: str = "timestamp") -> dt.datetime | None:
    """An aware UTC timestamp in the announced `dateTimeFormat`; no offset means UTC."""
    if value is None or value == "":
        return None
    try:
        parsed = compile_pattern(formats.date_time).parse(str(value))
    except ValueProblem as exc:
        raise ValueProblem(f"{field}: {exc}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


# --- status -----------------------------------------------------------------------------------


def derive_status(raw: dict[str, Any], total: Decimal, balance_due: Decimal | None) -> str:
    """The canonical status of an invoice that has no status field.

    docs/providers.md §2.4 [DOC]: no status field; lifecycle Draft → Issued → Paid → Voided, Paid
    means balance due is zero. docs/canonical-model.md: balance due = total → open,
    0 < balance due < total → partially_paid, balance due = 0 → paid, voided → void.
    docs/providers.md §2.4 [INF]: void and draft are only visible through `externalProviderStatus`
    (the accounting system's word, e.g. Xero's `VOIDED`/`DRAFT`); without it the amounts decide.

    Raises:
        ValueProblem: the status depends on a balance the invoice does not carry.
    """
    word = str(raw.get("externalProviderStatus") or "").strip().lower()
    if word in VOID_WORDS:
        return "void"
    if word in DRAFT_WORDS:
        return "draft"
    if balance_due is None:
        raise ValueProblem("balanceDue: missing, the status cannot be derived")
    if balance_due <= ZERO:
        return "paid"
    if balance_due >= total:
        return "open"
    return "partially_paid"


# --- rows -------------------------------------------------------------------------------------


def _required_decimal(raw: dict[str, Any], key: str) -> Decimal:
    value = to_decimal(raw.get(key), field=key)
    if value is None:
        raise ValueProblem(f"{key}: missing")
    return value


def _currency(value: Any) -> str:
    # docs/providers.md §2.4 [DOC]: `currencyCode` is an ISO string; case is normalised defensively and
    # the code checked against the ISO 4217 list (docs/canonical-model.md: not merely three letters).
    return iso_4217(value, field="currencyCode")


def _blank_to_none(value: Any) -> str | None:
    text = to_text(value)
    return text if text not in (None, "") else None


def organisation_of(raw: Any) -> str | None:
    """The `organisationId` a client or invoice carries, as text."""
    return _blank_to_none(raw.get("organisationId")) if isinstance(raw, dict) else None


def map_client(raw: dict[str, Any], *, account: str, formats: Formats) -> dict[str, Any]:
    """One `clients` row from a `content.data.clients[]` entry.

    `email` is the first contact marked `includeInEmails`, else the first contact with an email;
    `country` is the billing address's `countryCode`, else the physical address's.

    Raises:
        ValueProblem: no id, or a timestamp that does not follow the announced format.
    """
    client_id = _blank_to_none(raw.get("id"))
    if client_id is None:
        raise ValueProblem("client id: missing")
    contacts = [c for c in raw.get("contacts") or [] if isinstance(c, dict) and c.get("email")]
    preferred = [c for c in contacts if c.get("includeInEmails")]
    email = (preferred or contacts or [{}])[0].get("email")
    country = None
    for key in ("billingAddress", "physicalAddress"):
        address = raw.get(key)
        if isinstance(address, dict) and address.get("countryCode"):
            country = to_text(address["countryCode"])
            break
    return {
        "provider": PROVIDER_NAME,
        "account": account,
        "client_id": client_id,
        "name": to_text(raw.get("name")),
        "email": to_text(email),
        "country": country,
        "tax_id": _blank_to_none(raw.get("vatNumber")),
        "created_at": parse_timestamp(raw.get("createdDate"), formats, field="createdDate"),
        "updated_at": parse_timestamp(raw.get("updatedDate"), formats, field="updatedDate"),
    }


def map_line(raw: dict[str, Any], *, line_number: int, invoice: dict[str, Any], tax_inclusive: bool) -> dict[str, Any]:
    """One `invoice_items` row from a `lineItems[]` entry.

    Employee and pay-element fields, attachments (with their expiring download URLs) and tags
    stay in `raw` only.
    """
    line_amount = to_decimal(raw.get("lineAmount"), field="lineAmount")
    tax_amount = to_decimal(raw.get("taxAmount"), field="taxAmount")
    subtotal, total = line_amount, None
    if line_amount is not None and tax_amount is not None:
        total = line_amount + tax_amount
        # docs/providers.md §2.4 [INF]: `lineAmountTypes` is Xero-style; with `Inclusive` the line
        # amount already holds its tax, so the pre-tax subtotal is lineAmount - taxAmount.
        if tax_inclusive:
            subtotal, total = line_amount - tax_amount, line_amount
    return {
        "provider": PROVIDER_NAME,
        "account": invoice["account"],
        "invoice_id": invoice["invoice_id"],
        "line_number": line_number,
        "item_id": _blank_to_none(raw.get("id")),
        "name": None,
        "description": to_text(raw.get("description")),
        "quantity": to_decimal(raw.get("quantity"), field="quantity"),
        "unit": None,
        "unit_price": to_decimal(raw.get("unitAmount"), field="unitAmount"),
        "discount_amount": ZERO,
        "tax_rate": None,
        "tax_amount": tax_amount,
        "subtotal": subtotal,
        "total": total,
    }


def map_invoice(raw: dict[str, Any], *, account: str, client_name: str | None, formats: Formats) -> MappedInvoice:
    """One `invoices` row and its `invoice_items` rows from a `content.data.invoices[]` entry.

    Args:
        raw: the invoice object as the API sent it (not modified).
        account: the `account` label.
        client_name: the name of the invoice's client, from the clients listing.
        formats: the date formats announced by the response the invoice came in.

    Raises:
        ValueProblem: a missing id, amount or balance, an unknown currency or a date that does
            not follow the announced format.
    """
    invoice_id = _blank_to_none(raw.get("id"))
    if invoice_id is None:
        raise ValueProblem("invoice id: missing")
    total = _required_decimal(raw, "amount")
    subtotal = _required_decimal(raw, "subTotal")
    tax_total = _required_decimal(raw, "totalTax")
    balance_due = to_decimal(raw.get("balanceDue"), field="balanceDue")
    invoice = {
        "provider": PROVIDER_NAME,
        "account": account,
        "invoice_id": invoice_id,
        "client_id": _blank_to_none(raw.get("clientId")),
        "client_name": client_name,
        "number": _blank_to_none(raw.get("invoiceNumber")),
        # docs/canonical-model.md: Flow Payroll has one document type.
        "document_type": "invoice",
        "status": derive_status(raw, total, balance_due),
        # docs/providers.md §2.4 [INF]: the only status word the API sends is the accounting system's.
        "provider_status": _blank_to_none(raw.get("externalProviderStatus")),
        "is_archived": False,
        "issue_date": parse_date(raw.get("date"), formats, field="date"),
        "due_date": parse_date(raw.get("dueDate"), formats, field="dueDate"),
        "currency": _currency(raw.get("currencyCode")),
        "subtotal": subtotal,
        "discount_total": ZERO,
        "tax_total": tax_total,
        "withholding_total": ZERO,
        "shipping_total": ZERO,
        "total": total,
        "balance_due": balance_due,
        "created_at": parse_timestamp(raw.get("createdDate"), formats, field="createdDate"),
        "updated_at": parse_timestamp(raw.get("updatedDate"), formats, field="updatedDate"),
        "paid_at": None,
        "voided_at": None,
        "reference": _blank_to_none(raw.get("reference")),
        "notes": None,
    }
    tax_inclusive = str(raw.get("lineAmountTypes") or "").strip().lower() == "inclusive"
    lines = raw.get(LINES) or []
    if not isinstance(lines, list):
        raise ValueProblem(f"{LINES}: not a list")
    items = [
        map_line(line, line_number=n, invoice=invoice, tax_inclusive=tax_inclusive) for n, line in enumerate(lines, 1)
    ]
    return MappedInvoice(invoice, items)


# What this mapping reads of a record, per record type (sources/shared/structure.py, `Reads`): a field
# here that vanishes from the API's payloads is an error of the `schema_drift` check (docs/checks.md).
READS = Reads(
    invoice=(
        "$.id",
        "$.clientId",
        "$.invoiceNumber",
        "$.externalProviderStatus",
        "$.date",
        "$.dueDate",
        "$.currencyCode",
        "$.amount",
        "$.subTotal",
        "$.totalTax",
        "$.balanceDue",
        "$.createdDate",
        "$.updatedDate",
        "$.reference",
        "$.lineAmountTypes",
        "$.lineItems",
    ),
    line=(
        "$.lineItems[].id",
        "$.lineItems[].description",
        "$.lineItems[].quantity",
        "$.lineItems[].unitAmount",
        "$.lineItems[].lineAmount",
        "$.lineItems[].taxAmount",
    ),
    client=(
        "$.id",
        "$.organisationId",
        "$.name",
        "$.vatNumber",
        "$.createdDate",
        "$.updatedDate",
        "$.contacts",
        "$.contacts[].email",
        "$.contacts[].includeInEmails",
        "$.billingAddress",
        "$.billingAddress.countryCode",
        "$.physicalAddress",
        "$.physicalAddress.countryCode",
    ),
)
