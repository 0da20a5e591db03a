"""A state's version is the same text whether the load computes it (Arrow) or SQL does (a deletion,
an invoice listed again, the first state of an invoice loaded before history): the history would
otherwise start a new row for a state that did not change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.shared.history import SCHEMA, TRACKED, state_version_sql, state_versions

MONEY = st.decimals(min_value=Decimal("-999999999999.999999"), max_value=Decimal("999999999999.999999"), places=6).map(
    lambda d: d.quantize(Decimal("0.000001"))
)
ROW = st.fixed_dictionaries(
    {
        "provider": st.sampled_from(["kitchen", "fohlio"]),
        "account": st.text(min_size=1, max_size=8),
        "invoice_id": st.text(min_size=1, max_size=12),
        "status": st.none() | st.sampled_from(["draft", "open", "partially_paid", "paid", "void"]),
        "balance_due": st.none() | MONEY,
        "total": st.none() | MONEY,
        "due_date": st.none() | st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31)),
        "currency": st.none() | st.sampled_from(["EUR", "USD", "JPY"]),
        "deleted": st.booleans(),
    }
)


def table_of(rows: list[dict[str, object]]) -> pa.Table:
    columns = ("provider", "account", "invoice_id", *TRACKED, "deleted")
    return pa.Table.from_pylist(rows, schema=pa.schema([SCHEMA.field(c) for c in columns]))


def sql_versions(table: pa.Table) -> list[str]:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE h (provider VARCHAR, account VARCHAR, invoice_id VARCHAR, status VARCHAR, "
        "balance_due DECIMAL(18, 6), total DECIMAL(18, 6), due_date DATE, currency VARCHAR, deleted BOOLEAN, n INTEGER)"
    )
    con.register("rows", table.append_column("n", pa.array(range(table.num_rows), pa.int32())))
    con.execute("INSERT INTO h SELECT * FROM rows")
    return [r[0] for r in con.execute(f"SELECT {state_version_sql('h', 'h.deleted')} FROM h ORDER BY n").fetchall()]


@settings(max_examples=60, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=20))
def test_arrow_and_sql_give_one_version_per_state(rows: list[dict[str, object]]) -> None:
    table = table_of(rows)
    deleted = [bool(r["deleted"]) for r in rows]
    arrow = [state_versions(table.slice(i, 1), deleted=deleted[i]).to_pylist()[0] for i in range(table.num_rows)]
    assert arrow == sql_versions(table)


def test_versions_differ_where_a_tracked_value_or_the_key_does() -> None:
    base: dict[str, object] = {
        "provider": "kitchen",
        "account": "acme",
        "invoice_id": "1",
        "status": "open",
        "balance_due": Decimal("10"),
        "total": Decimal("10"),
        "due_date": dt.date(2025, 1, 31),
        "currency": "EUR",
        "deleted": False,
    }
    changes: list[dict[str, object]] = [
        {},
        {"invoice_id": "2"},
        {"account": "acme2"},
        {"status": "partially_paid"},
        {"balance_due": Decimal("9.999999")},
        {"balance_due": None},
        {"total": Decimal("10.000001")},
        {"due_date": dt.date(2025, 2, 1)},
        {"due_date": None},
        {"currency": "USD"},
        {"status": None},
    ]
    rows = [{**base, **change} for change in changes]
    versions = state_versions(table_of(rows), deleted=False).to_pylist()
    assert len(set(versions)) == len(rows)
    assert versions[0] != state_versions(table_of(rows[:1]), deleted=True).to_pylist()[0]
    # An amount is the same state whatever its written scale: 10 and 10.000000 are one value.
    assert state_versions(table_of([{**base, "total": Decimal("10.000000")}]), False).to_pylist() == versions[:1]


def test_an_invoice_met_twice_in_one_batch_keeps_its_first_state() -> None:
    from sources.shared.history import Observer, Run, observe
    from sources.shared.model import INVOICES, SCHEMAS

    base = {"provider": "kitchen", "account": "acme", "status": "open", "currency": "EUR"}
    rows = [
        {**base, "invoice_id": "1", "total": Decimal(1)},
        {**base, "invoice_id": "2", "total": Decimal(2)},
        {**base, "invoice_id": "1", "total": Decimal(3)},
        {**base, "invoice_id": "3", "total": Decimal(4)},
    ]
    invoices = pa.Table.from_pylist(rows, schema=SCHEMAS[INVOICES])
    assert Observer().observe(invoices) is None  # outside a run: no history
    observe(Run("r1", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
    try:
        found = Observer().observe(invoices)
    finally:
        observe(None)
    assert found is not None
    assert found.select(["invoice_id", "total", "run_id"]).to_pylist() == [
        {"invoice_id": "1", "total": Decimal(1), "run_id": "r1"},
        {"invoice_id": "2", "total": Decimal(2), "run_id": "r1"},
        {"invoice_id": "3", "total": Decimal(4), "run_id": "r1"},
    ]
