"""The history and the views on it, computed in Python from what a test saw, never from the
SQL under test:

- `expected_history`: the rows `invoice_history` must hold after a sequence of runs, from the
  `invoices` table as each run left it (a new row whenever a tracked value or the deleted flag
  differs from the invoice's previous state, dated by the run that saw it);
- `expected_payments` and `expected_month_end`: `invoice_payments` and `receivables_month_end`
  from the history rows, the invoices' own columns and `pipeline_runs`, as the contract words them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipelines.views import CREDIT_TYPES, NOT_REVENUE_TYPES, OPEN_STATUSES

Key = tuple[str, str, str]
State = tuple[Any, ...]  # status, balance_due, total, due_date, currency, deleted
STATE_SQL = "status, balance_due, total, due_date, currency, deleted_at IS NOT NULL"
BUCKETS = ("no_due_date", "not_yet_due", "days_1_30", "days_31_60", "days_61_90", "days_over_90")


@dataclass(frozen=True)
class Row:
    """One `invoice_history` row."""

    provider: str
    account: str
    invoice_id: str
    status: str | None
    balance_due: Decimal | None
    total: Decimal | None
    due_date: dt.date | None
    currency: str | None
    deleted: bool
    valid_from: dt.datetime
    valid_to: dt.datetime | None
    run_id: str

    @property
    def key(self) -> Key:
        return (self.provider, self.account, self.invoice_id)

    @property
    def state(self) -> State:
        return (self.status, self.balance_due, self.total, self.due_date, self.currency, self.deleted)


HISTORY_SQL = (
    "SELECT provider, account, invoice_id, status, balance_due, total, due_date, currency, deleted, valid_from, "
    "valid_to, run_id FROM {table} ORDER BY provider, account, invoice_id, valid_from"
)


def rows_of(query: Callable[[str], Iterable[Sequence[Any]]], table: str = "billing.invoice_history") -> list[Row]:
    return [Row(*r) for r in query(HISTORY_SQL.format(table=table))]


def snapshot(query: Callable[[str], Iterable[Sequence[Any]]]) -> dict[Key, State]:
    """Every invoice's state as the `invoices` table holds it now."""
    sql = f"SELECT provider, account, invoice_id, {STATE_SQL} FROM billing.invoices"
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in query(sql)}


def expected_history(runs: Sequence[tuple[str, dt.datetime, Mapping[Key, State]]]) -> list[Row]:
    """The history of runs `(run_id, started, invoices after the run)`, in order: an invoice's
    first row is its state after the first run that holds it; a new row begins whenever its
    state after a run differs from its previous one, and ends the previous row then."""
    rows: dict[Key, list[Row]] = defaultdict(list)
    for run_id, started, states in runs:
        for key, state in states.items():
            kept = rows[key]
            if kept and kept[-1].state == state:
                continue
            if kept:
                kept[-1] = dataclasses.replace(kept[-1], valid_to=started)
            kept.append(Row(*key, *state, started, None, run_id))  # type: ignore[call-arg]
    return sorted((r for kept in rows.values() for r in kept), key=lambda r: (r.key, r.valid_from))


def _utc_day(value: dt.datetime) -> dt.date:
    return value.astimezone(dt.UTC).date()


def expected_payments(
    history: Sequence[Row], invoices: Mapping[Key, Mapping[str, Any]], runs: Sequence[Mapping[str, Any]]
) -> dict[Key, dict[str, Any]]:
    """`invoice_payments` by key. `invoices`: key → the invoice's columns; `runs`: `pipeline_runs` rows."""
    by_key: dict[Key, list[Row]] = defaultdict(list)
    for row in sorted(history, key=lambda r: r.valid_from):
        by_key[row.key].append(row)
    found: dict[Key, dict[str, Any]] = {}
    for key, invoice in invoices.items():
        rows = by_key.get(key)
        billing = invoice["document_type"] not in NOT_REVENUE_TYPES
        if (
            not rows
            or invoice["deleted_at"] is not None
            or not billing
            or invoice["document_type"] in CREDIT_TYPES
            or invoice["status"] in ("draft", "void")
        ):
            continue
        first_seen = rows[0].valid_from
        paid_by = next((r.valid_from for r in rows if r.status == "paid"), None)
        if paid_by is None and invoice["status"] != "paid" and invoice["paid_at"] is None:
            continue
        observed = paid_by is not None and paid_by > first_seen
        before = [
            r["started_at"]
            for r in runs
            if (r["provider"], r["account"]) == key[:2] and r["status"] == "loaded" and r["started_at"] < paid_by
        ] if observed else []  # fmt: skip
        if invoice["paid_at"] is not None:
            paid_on: dt.date | None = _utc_day(invoice["paid_at"])
        else:
            paid_on = _utc_day(paid_by) if observed and paid_by is not None else None
        found[key] = {
            "client_id": invoice["client_id"],
            "currency": invoice["currency"],
            "total": invoice["total"],
            "issue_date": invoice["issue_date"],
            "due_date": invoice["due_date"],
            "paid_at": invoice["paid_at"],
            "paid_not_before": max(before) if before else None,
            "paid_by": paid_by,
            "paid_on": paid_on,
            "days_to_pay": (paid_on - invoice["issue_date"]).days if paid_on and invoice["issue_date"] else None,
            "days_late": (paid_on - invoice["due_date"]).days if paid_on and invoice["due_date"] else None,
        }
    return found


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _month_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def expected_month_end(
    history: Sequence[Row], document_types: Mapping[Key, str | None], today: dt.date
) -> dict[tuple[str, str, str | None, dt.date], dict[str, Any]]:
    """`receivables_month_end` by (provider, account, currency, month)."""
    groups: dict[tuple[str, str, str | None], list[Row]] = defaultdict(list)
    for row in history:
        groups[(row.provider, row.account, row.currency)].append(row)
    found: dict[tuple[str, str, str | None, dt.date], dict[str, Any]] = {}
    for group, rows in groups.items():
        first = min(_utc_day(r.valid_from) for r in rows)
        for month in _month_starts(first, today):
            current = month == today.replace(day=1)
            month_end = today if current else _next_month(month) - dt.timedelta(days=1)
            figures = {b: Decimal(0) for b in (*BUCKETS, "outstanding")}
            documents = 0
            for r in rows:
                if current:
                    standing = r.valid_to is None
                else:
                    standing = _utc_day(r.valid_from) <= month_end and (
                        r.valid_to is None or _utc_day(r.valid_to) > month_end
                    )
                kind = document_types[r.key]
                if (
                    not standing
                    or r.deleted
                    or r.status not in OPEN_STATUSES
                    or r.balance_due is None
                    or kind in NOT_REVENUE_TYPES
                ):
                    continue
                signed = -r.balance_due if kind in CREDIT_TYPES else r.balance_due
                if r.due_date is None:
                    bucket = "no_due_date"
                else:
                    age = (month_end - r.due_date).days
                    bucket = (
                        "not_yet_due"
                        if age <= 0
                        else "days_1_30"
                        if age <= 30
                        else "days_31_60"
                        if age <= 60
                        else "days_61_90"
                        if age <= 90
                        else "days_over_90"
                    )
                figures[bucket] += signed
                figures["outstanding"] += signed
                documents += 1
            found[(*group, month)] = {"month_end": month_end, "documents": documents, **figures}
    return found
