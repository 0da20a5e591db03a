"""A small warehouse for the views' reporting-currency columns: the `invoices` columns the views
read, `fx_rates` around the day the tests run, the views created as a load creates them
(`pipelines.views.view_statements`) on DuckDB or Postgres, and what the contract says each
view's `_rc` and `unconverted` columns hold, computed here in Python from the same rows with the
reference conversion (`pipelines.fx`), independently of the SQL.

The rates, relative to `today`:
- USD, JPY, GBP: the ECB's way, every weekday of the last 80 days up to yesterday;
- BHD: a user's, Mondays only, none between 40 and 25 days ago (a gap longer than 7 days);
- KWD: every weekday until 12 days ago, none since (too old for today's balances);
- AED: none at all.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from pipelines.fx import Rates, minor_unit, round_half_even
from pipelines.views import (
    CREDIT_TYPES,
    DSO_WINDOW_DAYS,
    EXCLUDED_STATUSES,
    NOT_REVENUE_TYPES,
    OPEN_STATUSES,
    view_statements,
)
from sources.ecb import fx_rates_ddl

CURRENCIES = ("EUR", "USD", "JPY", "GBP", "BHD", "KWD", "AED")
TYPICAL = {"USD": "1.1172", "JPY": "175.68", "GBP": "0.83380", "BHD": "0.4212", "KWD": "0.3431"}
REPORTING = ("EUR", "USD", "JPY", "BHD")
DOCUMENT_TYPES = ("invoice", "invoice", "invoice", "credit_note", "receipt", "quote")
STATUSES = ("open", "open", "partially_paid", "paid", "draft", "void", "uncollectible")

INVOICES_DDL = (
    "CREATE TABLE billing.invoices (provider TEXT, account TEXT, invoice_id TEXT, client_id TEXT, client_name TEXT, "
    "document_type TEXT, status TEXT, issue_date DATE, due_date DATE, currency TEXT, total DECIMAL(18, 6), "
    "balance_due DECIMAL(18, 6), tax_total DECIMAL(18, 6), deleted_at TIMESTAMP WITH TIME ZONE)"
)


def rate_rows(today: dt.date, seed: int = 3) -> list[tuple[dt.date, str, Decimal, str]]:
    """`(rate_date, currency, per_eur, source)` of the module's description, seeded."""
    rng = random.Random(seed)
    rows = []
    for back in range(80, 0, -1):
        day = today - dt.timedelta(days=back)
        for code, typical in TYPICAL.items():
            if code == "BHD":
                if day.weekday() != 0 or 25 <= back <= 40:
                    continue
            elif day.weekday() >= 5 or (code == "KWD" and back < 12):
                continue
            decimals = len(typical.partition(".")[2])
            value = Decimal(typical) * (100000 + rng.randint(-3000, 3000)) / 100000
            rows.append((day, code, value.quantize(Decimal(1).scaleb(-decimals)), "user" if code == "BHD" else "ecb"))
    return rows


@dataclass(frozen=True)
class Doc:
    """One document of `invoices` (one account per provider, a client id always)."""

    invoice_id: str
    provider: str
    client_id: str
    document_type: str
    status: str
    issue_date: dt.date | None
    due_date: dt.date | None
    currency: str  # an ISO 4217 code, never NULL in `invoices`
    total: Decimal | None
    balance_due: Decimal | None
    deleted: bool = False

    def row(self) -> tuple[Any, ...]:
        deleted = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) if self.deleted else None
        return (
            *(self.provider, "acme", self.invoice_id, self.client_id, f"Client {self.client_id}"),
            *(self.document_type, self.status, self.issue_date, self.due_date, self.currency),
            *(self.total, self.balance_due, Decimal(0), deleted),
        )


def sample_docs(today: dt.date, seed: int, count: int) -> list[Doc]:
    """`count` documents of every kind: each currency, ties, credit notes, old and recent days."""
    rng = random.Random(seed)
    docs = []
    for i in range(count):
        issue = today - dt.timedelta(days=rng.randint(0, 85)) if rng.random() > 0.03 else None
        due = issue + dt.timedelta(days=rng.randint(-5, 45)) if issue and rng.random() > 0.1 else None
        kind = rng.random()
        if kind < 0.2:  # a tie at some minor unit
            total = Decimal(rng.randint(0, 10**6) * 10 + 5).scaleb(-rng.choice((1, 2, 3, 4)))
        elif kind < 0.25:  # the largest amounts of the money columns
            total = Decimal(rng.randint(0, 10**18 - 1)).scaleb(-6)
        else:
            total = Decimal(rng.randint(0, 10**9)).scaleb(-rng.choice((0, 2, 6)))
        status = rng.choice(STATUSES)
        balance = {"paid": Decimal(0), "void": Decimal(0), "draft": None}.get(status, total)
        if status == "partially_paid" and total:
            balance = (total / 3).quantize(Decimal("0.01"))
        docs.append(
            Doc(
                f"d{i}",
                rng.choice(("p1", "p2")),
                rng.choice(("c1", "c2", "c3")),
                rng.choice(DOCUMENT_TYPES),
                status,
                issue,
                due,
                rng.choice((*CURRENCIES, "EUR", "USD")),
                total if rng.random() > 0.02 else None,
                balance,
                rng.random() < 0.05,
            )
        )
    return docs


class _Capabilities:
    def __init__(self, dialect: str) -> None:
        self.sqlglot_dialect = dialect

    def escape_identifier(self, name: str) -> str:
        return f'"{name}"'


class Client:
    """What `view_statements` needs of a dlt sql client: a dialect and the dataset `billing`."""

    dataset_name = "billing"

    def __init__(self, dialect: str) -> None:
        self.capabilities: Any = _Capabilities(dialect)

    def make_qualified_table_name_path(self, name: str, quote: bool = False) -> list[str]:
        return ["billing", name]


def setup_statements(rates: Sequence[tuple[dt.date, str, Decimal, str]]) -> list[str]:
    values = ", ".join(f"(DATE '{d}', '{c}', {v}, '{s}')" for d, c, v, s in rates)
    return [
        "CREATE SCHEMA billing",
        fx_rates_ddl("billing.fx_rates"),
        f"INSERT INTO billing.fx_rates VALUES {values}",
        INVOICES_DDL,
    ]


def insert(execute: Callable[..., Any], docs: Iterable[Doc], placeholder: str) -> None:
    """The documents into `billing.invoices` (`placeholder`: `?` for DuckDB, `%s` for Postgres)."""
    execute("DELETE FROM billing.invoices")
    rows = [d.row() for d in docs]
    if rows:
        marks = ", ".join([placeholder] * len(rows[0]))
        for row in rows:
            execute(f"INSERT INTO billing.invoices VALUES ({marks})", row)


def views(dialect: str, reporting: str) -> list[str]:
    return view_statements(Client(dialect), True, reporting, True, has_history=False)


# --- what the contract says --------------------------------------------------------------------

Key = tuple[Any, ...]
KEYS = {
    "invoices_current": ("invoice_id",),
    "revenue_monthly": ("provider", "account", "currency", "month"),
    "receivables_aging": ("provider", "account", "currency", "client_id"),
    "client_balances": ("provider", "account", "currency", "client_id"),
    "dso": ("provider", "account", "currency"),
}
COLUMNS = {
    "invoices_current": (
        "total_rc",
        "balance_due_rc",
        "fx_rate_date",
        "balance_fx_rate_date",
        "signed_total_rc",
        "signed_balance_due_rc",
        "reporting_currency",
        "unconverted",
    ),
    "revenue_monthly": ("invoiced_rc", "credited_rc", "net_rc", "reporting_currency", "unconverted"),
    "receivables_aging": ("outstanding_rc", "overdue_rc", "fx_rate_date", "reporting_currency", "unconverted"),
    "client_balances": ("outstanding_rc", "reporting_currency", "unconverted"),
    "dso": ("outstanding_rc", "net_revenue_90d_rc", "reporting_currency", "unconverted"),
}


def query(view: str) -> str:
    return f"SELECT {', '.join([*KEYS[view], *COLUMNS[view]])} FROM billing.{view}"


def as_dict(view: str, rows: Iterable[Sequence[Any]]) -> dict[Key, dict[str, Any]]:
    width = len(KEYS[view])
    found: dict[Key, dict[str, Any]] = {}
    for row in rows:
        values = [v.date() if isinstance(v, dt.datetime) else v for v in row]
        key = tuple(values[:width])
        assert key not in found, (view, key)
        found[key] = dict(zip(COLUMNS[view], values[width:], strict=True))
    return found


@dataclass
class _Converted:
    doc: Doc
    sign: int
    total_rc: Decimal | None
    balance_rc: Decimal | None
    rate_date: dt.date | None
    balance_rate_date: dt.date | None

    @property
    def signed_total_rc(self) -> Decimal | None:
        return None if self.total_rc is None else self.sign * self.total_rc

    @property
    def signed_balance_rc(self) -> Decimal | None:
        return None if self.balance_rc is None else self.sign * self.balance_rc


def _overdue(doc: Doc, today: dt.date) -> bool:
    return doc.due_date is not None and (today - doc.due_date).days >= 1


def _rc_sum(items: Iterable[tuple[bool, Decimal | None]], exponent: int) -> Decimal | None:
    """A row's sum: of the converted amounts of the documents that need one; 0 when none needs
    one; None when none of those that do could be converted."""
    needed = [rc for needs, rc in items if needs]
    if needed and all(rc is None for rc in needed):
        return None
    return sum((rc for rc in needed if rc is not None), round_half_even(Fraction(0), exponent))


def expected(
    docs: Iterable[Doc], rows: Sequence[tuple[dt.date, str, Decimal, str]], reporting: str, today: dt.date
) -> dict[str, dict[Key, dict[str, Any]]]:
    """Every view's `_rc`, `unconverted` and rate-date columns for `docs`, by the rules of
    docs/canonical-model.md, from the Python reference."""
    rates = Rates.of((d, c, v) for d, c, v, _ in rows)
    e = minor_unit(reporting)
    zero = round_half_even(Fraction(0), e)

    def conv(amount: Decimal | None, currency: str | None, day: dt.date | None) -> Decimal | None:
        if amount is None or currency is None:
            return None
        if currency == reporting:
            return round_half_even(Fraction(amount), e)
        return None if day is None else rates.convert(amount, currency, reporting, day)

    def rate_date(currency: str | None, day: dt.date | None) -> dt.date | None:
        return None if currency is None or day is None else rates.rate_date(currency, reporting, day)

    live = [d for d in docs if not d.deleted]
    converted = [
        _Converted(
            d,
            -1 if d.document_type in CREDIT_TYPES else 1,
            conv(d.total, d.currency, d.issue_date),
            conv(d.balance_due, d.currency, today),
            rate_date(d.currency, d.issue_date),
            rate_date(d.currency, today),
        )
        for d in live
    ]
    out: dict[str, dict[Key, dict[str, Any]]] = {view: {} for view in KEYS}
    for c in converted:
        d = c.doc
        missing = (d.total is not None and c.total_rc is None) or (d.balance_due is not None and c.balance_rc is None)
        out["invoices_current"][(d.invoice_id,)] = {
            "total_rc": c.total_rc,
            "balance_due_rc": c.balance_rc,
            "fx_rate_date": c.rate_date,
            "balance_fx_rate_date": c.balance_rate_date,
            "signed_total_rc": c.signed_total_rc,
            "signed_balance_due_rc": c.signed_balance_rc,
            "reporting_currency": reporting,
            "unconverted": int(missing),
        }
    billing = [c for c in converted if c.doc.document_type not in NOT_REVENUE_TYPES]
    billed = [c for c in billing if c.doc.status not in EXCLUDED_STATUSES]
    receivable = [c for c in billing if c.doc.status in OPEN_STATUSES and c.doc.balance_due is not None]

    def groups(items: list[_Converted], key: Callable[[Doc], Key]) -> dict[Key, list[_Converted]]:
        found: dict[Key, list[_Converted]] = defaultdict(list)
        for item in items:
            found[key(item.doc)].append(item)
        return found

    def month(d: Doc) -> dt.date | None:
        return d.issue_date.replace(day=1) if d.issue_date else None

    def total(c: _Converted) -> tuple[bool, Decimal | None]:
        return c.doc.total is not None, c.signed_total_rc

    def credit(c: _Converted) -> bool:
        return c.doc.document_type in CREDIT_TYPES

    for key, cs in groups(billed, lambda d: (d.provider, "acme", d.currency, month(d))).items():
        out["revenue_monthly"][key] = {
            "invoiced_rc": _rc_sum(((total(c)[0] and not credit(c), c.signed_total_rc) for c in cs), e),
            "credited_rc": _rc_sum(((total(c)[0] and credit(c), c.signed_total_rc) for c in cs), e),
            "net_rc": _rc_sum((total(c) for c in cs), e),
            "reporting_currency": reporting,
            "unconverted": sum(1 for c in cs if c.doc.total is not None and c.total_rc is None),
        }
    for key, cs in groups(receivable, lambda d: (d.provider, "acme", d.currency, d.client_id)).items():
        dates = [c.balance_rate_date for c in cs if c.balance_rate_date is not None]
        out["receivables_aging"][key] = {
            "outstanding_rc": _rc_sum(((True, c.signed_balance_rc) for c in cs), e),
            "overdue_rc": _rc_sum(((_overdue(c.doc, today), c.signed_balance_rc) for c in cs), e),
            "fx_rate_date": min(dates, default=None),
            "reporting_currency": reporting,
            "unconverted": sum(1 for c in cs if c.balance_rc is None),
        }
    for key, cs in groups(billed, lambda d: (d.provider, "acme", d.currency, d.client_id)).items():
        owed = [c for c in cs if c.doc.status in OPEN_STATUSES and c.doc.balance_due is not None]
        out["client_balances"][key] = {
            "outstanding_rc": _rc_sum(((True, c.signed_balance_rc) for c in owed), e) if owed else zero,
            "reporting_currency": reporting,
            "unconverted": sum(1 for c in owed if c.balance_rc is None),
        }
    window = today - dt.timedelta(days=DSO_WINDOW_DAYS)
    recent = [c for c in billed if c.doc.issue_date is not None and window < c.doc.issue_date <= today]
    owed_by = groups(receivable, lambda d: (d.provider, "acme", d.currency))
    earned_by = groups(recent, lambda d: (d.provider, "acme", d.currency))
    for key in owed_by.keys() | earned_by.keys():
        owed, earned = owed_by.get(key, []), earned_by.get(key, [])
        out["dso"][key] = {
            "outstanding_rc": _rc_sum(((True, c.signed_balance_rc) for c in owed), e) if owed else zero,
            "net_revenue_90d_rc": _rc_sum((total(c) for c in earned), e) if earned else zero,
            "reporting_currency": reporting,
            # Each document once, whether its balance, its total or both had no rate.
            "unconverted": len(
                {id(c.doc) for c in owed if c.balance_rc is None}
                | {id(c.doc) for c in earned if c.doc.total is not None and c.total_rc is None}
            ),
        }
    return out


def differences(got: dict[Key, dict[str, Any]], want: dict[Key, dict[str, Any]], exponent: int) -> list[str]:
    """What differs between a view's rows and the reference's (empty when they agree): every
    value equal, and every converted amount with exactly the minor unit's decimals."""
    problems = [f"rows {sorted(got.keys() ^ want.keys(), key=repr)}"] if got.keys() != want.keys() else []
    for key in got.keys() & want.keys():
        for column, value in want[key].items():
            found = got[key][column]
            if found != value or (found is None) != (value is None):
                problems.append(f"{key} {column}: {found!r} != {value!r}")
            elif column.endswith("_rc") and isinstance(found, Decimal) and found.as_tuple().exponent != -exponent:
                problems.append(f"{key} {column}: {found!r} has not {exponent} decimals")
    return problems
