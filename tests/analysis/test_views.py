"""Each view against figures computed here, in Python, from the `invoices` table itself.

The rules are the contract's (`docs/canonical-model.md`, "Views"), written out again on purpose
rather than imported from `pipelines.views`."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipelines.warehouse import read_only

pytestmark = pytest.mark.integration

NOT_COUNTED = {"receipt", "quote", "proforma", "estimate", "shipping", "transport", "devolution", "purchase_order"}
ZERO = Decimal(0)


def rows(db: Path, sql: str) -> list[dict[str, Any]]:
    with read_only(db) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def today(db: Path) -> dt.date:
    with read_only(db) as con:
        return con.execute("SELECT current_date").fetchone()[0]  # type: ignore[index]


def live(db: Path) -> list[dict[str, Any]]:
    """Invoices not deleted (the tables may not have `deleted_at` yet)."""
    return [r for r in rows(db, "SELECT * FROM billing.invoices") if r.get("deleted_at") is None]


def sign(r: dict[str, Any]) -> int:
    return -1 if r["document_type"] == "credit_note" else 1


def signed(r: dict[str, Any], column: str) -> Decimal | None:
    return None if r[column] is None else sign(r) * r[column]


def billed(r: dict[str, Any]) -> bool:
    return r["document_type"] not in NOT_COUNTED and r["status"] not in ("draft", "void")


def receivable(r: dict[str, Any]) -> bool:
    return billed(r) and r["status"] in ("open", "partially_paid") and r["balance_due"] is not None


def client_key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["client_id"], r["client_name"] if r["client_id"] is None else None)


def group(
    items: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], tuple[Any, ...]]
) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    out: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        out[key(item)].append(item)
    return out


def total(values: Iterable[Decimal | None]) -> Decimal:
    return sum((v for v in values if v is not None), ZERO)


def test_invoices_current_keeps_every_live_document_and_derives_sign_and_overdue(warehouse: Path) -> None:
    day = today(warehouse)
    expected = {(r["provider"], r["account"], r["invoice_id"]): r for r in live(warehouse)}
    got = {
        (r["provider"], r["account"], r["invoice_id"]): r
        for r in rows(warehouse, "SELECT * FROM billing.invoices_current")
    }
    assert got.keys() == expected.keys()
    assert any(r["status"] == "draft" for r in got.values()) and any(r["status"] == "void" for r in got.values())
    for key, r in expected.items():
        view = got[key]
        assert {k: view[k] for k in r} == r, key  # every invoices column, unchanged
        assert view["signed_total"] == signed(r, "total")
        assert view["signed_balance_due"] == signed(r, "balance_due")
        overdue = (
            r["status"] in ("open", "partially_paid")
            and r["document_type"] not in NOT_COUNTED
            and r["due_date"] is not None
            and r["due_date"] < day
        )
        assert view["is_overdue"] is overdue, key
        assert view["days_overdue"] == ((day - r["due_date"]).days if overdue else 0), key
    assert any(v["is_overdue"] for v in got.values())


def test_revenue_monthly_signs_credit_notes_and_counts_billing_documents_only(warehouse: Path) -> None:
    docs = [r for r in live(warehouse) if billed(r)]
    expected = {}
    for (provider, account, currency, month), group_rows in group(
        docs, lambda r: (r["provider"], r["account"], r["currency"], r["issue_date"].replace(day=1))
    ).items():
        invoiced = total(r["total"] for r in group_rows if r["document_type"] != "credit_note")
        credited = -total(r["total"] for r in group_rows if r["document_type"] == "credit_note")
        expected[(provider, account, currency, month)] = {
            "documents": len(group_rows),
            "invoiced": invoiced,
            "credited": credited,
            "net": invoiced + credited,
            "tax": total(signed(r, "tax_total") for r in group_rows),
        }
    got = {
        (r["provider"], r["account"], r["currency"], r["month"]): {
            k: r[k] for k in ("documents", "invoiced", "credited", "net", "tax")
        }
        for r in rows(warehouse, "SELECT * FROM billing.revenue_monthly")
    }
    assert got == expected
    assert any(v["credited"] < 0 for v in got.values())
    # never summed across currencies: one row per currency, and each month's currencies are distinct rows
    assert len({k[2] for k in got}) > 1


def test_receivables_aging_buckets_add_up_to_the_signed_open_balances(warehouse: Path) -> None:
    day = today(warehouse)
    docs = [r for r in live(warehouse) if receivable(r)]
    expected = {}
    for key, group_rows in group(docs, lambda r: (r["provider"], r["account"], r["currency"], *client_key(r))).items():
        buckets = dict.fromkeys(
            ("no_due_date", "not_yet_due", "days_1_30", "days_31_60", "days_61_90", "days_over_90"), ZERO
        )
        for r in group_rows:
            age = None if r["due_date"] is None else (day - r["due_date"]).days
            bucket = (
                "no_due_date"
                if age is None
                else "not_yet_due"
                if age <= 0
                else "days_1_30"
                if age <= 30
                else "days_31_60"
                if age <= 60
                else "days_61_90"
                if age <= 90
                else "days_over_90"
            )
            buckets[bucket] += signed(r, "balance_due")  # type: ignore[operator]
        expected[key[:4]] = {**buckets, "outstanding": total(signed(r, "balance_due") for r in group_rows)}
    got = {}
    for r in rows(warehouse, "SELECT * FROM billing.receivables_aging"):
        buckets = {
            k: r[k] for k in ("no_due_date", "not_yet_due", "days_1_30", "days_31_60", "days_61_90", "days_over_90")
        }
        assert sum(buckets.values()) == r["outstanding"]
        got[(r["provider"], r["account"], r["currency"], r["client_id"])] = {**buckets, "outstanding": r["outstanding"]}
    assert got == expected
    assert any(v["days_over_90"] for v in got.values())


def test_client_balances(warehouse: Path) -> None:
    docs = [r for r in live(warehouse) if billed(r)]
    expected = {}
    for key, group_rows in group(docs, lambda r: (r["provider"], r["account"], r["currency"], *client_key(r))).items():
        unpaid_due = [
            r["due_date"]
            for r in group_rows
            if r["status"] in ("open", "partially_paid")
            and r["document_type"] != "credit_note"
            and (r["balance_due"] or 0) > 0
            and r["due_date"]
        ]
        issued = [r["issue_date"] for r in group_rows if r["document_type"] != "credit_note" and r["issue_date"]]
        expected[key[:4]] = {
            "invoiced": total(signed(r, "total") for r in group_rows),
            "paid": total(
                signed(r, "total") - signed(r, "balance_due")  # type: ignore[operator]
                for r in group_rows
                if r["balance_due"] is not None
            ),
            "outstanding": total(
                signed(r, "balance_due") for r in group_rows if r["status"] in ("open", "partially_paid")
            ),
            "uncollectible": total(signed(r, "balance_due") for r in group_rows if r["status"] == "uncollectible"),
            "last_invoice_date": max(issued) if issued else None,
            "oldest_unpaid_due_date": min(unpaid_due) if unpaid_due else None,
        }
    got = {
        (r["provider"], r["account"], r["currency"], r["client_id"]): {k: r[k] for k in expected[next(iter(expected))]}
        for r in rows(warehouse, "SELECT * FROM billing.client_balances")
    }
    assert got == expected
    outstanding = rows(warehouse, "SELECT currency, sum(outstanding) AS o FROM billing.receivables_aging GROUP BY 1")
    balances = rows(warehouse, "SELECT currency, sum(outstanding) AS o FROM billing.client_balances GROUP BY 1")
    assert {r["currency"]: r["o"] for r in outstanding} == {r["currency"]: r["o"] for r in balances if r["o"]}


def test_dso(warehouse: Path) -> None:
    day = today(warehouse)
    docs = live(warehouse)
    keys = {(r["provider"], r["account"], r["currency"]) for r in docs if receivable(r)}
    recent = [r for r in docs if billed(r) and r["issue_date"] and day - dt.timedelta(days=90) < r["issue_date"] <= day]
    keys |= {(r["provider"], r["account"], r["currency"]) for r in recent}
    got = {(r["provider"], r["account"], r["currency"]): r for r in rows(warehouse, "SELECT * FROM billing.dso")}
    assert got.keys() == keys
    with_dso = 0
    for key in keys:
        outstanding = total(
            signed(r, "balance_due")
            for r in docs
            if receivable(r) and (r["provider"], r["account"], r["currency"]) == key
        )
        revenue = total(signed(r, "total") for r in recent if (r["provider"], r["account"], r["currency"]) == key)
        assert got[key]["outstanding"] == outstanding
        assert got[key]["net_revenue_90d"] == revenue
        if revenue > 0:
            with_dso += 1
            assert abs(got[key]["dso_days"] - outstanding / (revenue / 90)) <= Decimal("0.051"), key
        else:
            assert got[key]["dso_days"] is None
    assert with_dso > 0  # the Fohlio sandbox issues documents up to today


def test_revenue_agrees_with_the_signed_totals_of_billing_documents(warehouse: Path) -> None:
    per_currency: dict[str, Decimal] = defaultdict(Decimal)
    for r in live(warehouse):
        if billed(r):
            per_currency[r["currency"]] += signed(r, "total")  # type: ignore[operator]
    got = rows(warehouse, "SELECT currency, sum(net) AS net FROM billing.revenue_monthly GROUP BY 1")
    assert {r["currency"]: r["net"] for r in got} == dict(per_currency)


def test_deleted_documents_are_left_out_and_other_documents_count_nowhere(variant: Path) -> None:
    warehouse = variant
    everything = rows(warehouse, "SELECT * FROM billing.invoices")
    deleted = {r["invoice_id"] for r in everything if r["deleted_at"] is not None}
    others = {r["invoice_id"] for r in everything if r["document_type"] in NOT_COUNTED}
    assert deleted and others
    current = {r["invoice_id"] for r in rows(warehouse, "SELECT invoice_id FROM billing.invoices_current")}
    assert not deleted & current and others <= current
    counted = rows(warehouse, "SELECT sum(documents) AS n FROM billing.receivables_aging")[0]["n"]
    assert counted == sum(1 for r in everything if r["deleted_at"] is None and receivable(r))
    assert rows(warehouse, "SELECT count(*) AS n FROM billing.receivables_aging WHERE no_due_date <> 0")[0]["n"] > 0
