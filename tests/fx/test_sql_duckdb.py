"""The SQL conversion on DuckDB gives the Python reference's digits: property tests of the exact
arithmetic (ties, credit notes, JPY/BHD/CLF targets, the largest amounts), and the rate lookup
on a sample warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction

import duckdb
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from pipelines.fx import round_half_even
from pipelines.fx_sql import exact_conversion
from tests.fx import sample

AMOUNTS = st.integers(-(10**18) + 1, 10**18 - 1).map(lambda n: Decimal(n).scaleb(-6))
SMALL_AMOUNTS = st.integers(-(10**9), 10**9).map(lambda n: Decimal(n).scaleb(-6))
RATES = st.integers(1, 10**16 - 1).map(lambda n: Decimal(n).scaleb(-8))
REALISTIC_RATES = st.sampled_from(["1", "1.1172", "175.68", "0.83380", "20275.17", "0.4212", "1912400", "0.702804"])
EXPONENTS = st.sampled_from([0, 2, 3, 4])


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        yield connection


def sql_value(con: duckdb.DuckDBPyConnection, amount: Decimal, source: Decimal, target: Decimal, e: int) -> Decimal:
    expression = exact_conversion(
        f"CAST('{amount}' AS DECIMAL(18, 6))",
        f"CAST('{source}' AS DECIMAL(16, 8))",
        f"CAST('{target}' AS DECIMAL(16, 8))",
        e,
    )
    row = con.execute(f"SELECT {expression}, typeof({expression})").fetchone()
    assert row is not None and row[1] == f"DECIMAL(38,{e})"  # never a DOUBLE
    return Decimal(row[0])


def python_value(amount: Decimal, source: Decimal, target: Decimal, e: int) -> Decimal:
    return round_half_even(Fraction(amount) * Fraction(target) / Fraction(source), e)


@settings(max_examples=400, deadline=None)
@given(amount=AMOUNTS, source=RATES, target=RATES, e=EXPONENTS)
@example(amount=Decimal("999999999999.999999"), source=Decimal("0.00000001"), target=Decimal("99999999.99999999"), e=4)
@example(amount=Decimal("-999999999999.999999"), source=Decimal("99999999.99999999"), target=Decimal("0.00000001"), e=0)
def test_any_amount_and_rates_in_their_types(
    con: duckdb.DuckDBPyConnection, amount: Decimal, source: Decimal, target: Decimal, e: int
) -> None:
    assert sql_value(con, amount, source, target, e) == python_value(amount, source, target, e)


@settings(max_examples=300, deadline=None)
@given(amount=SMALL_AMOUNTS, source=REALISTIC_RATES, target=REALISTIC_RATES, e=EXPONENTS)
def test_realistic_rates(con: duckdb.DuckDBPyConnection, amount: Decimal, source: str, target: str, e: int) -> None:
    s, t = Decimal(source), Decimal(target)
    assert sql_value(con, amount, s, t, e) == python_value(amount, s, t, e)


@settings(max_examples=200, deadline=None)
@given(units=st.integers(-(10**8), 10**8), e=EXPONENTS, factor=st.sampled_from(["1", "2", "0.5", "4", "0.25"]))
def test_exact_ties_round_half_to_even_in_both_signs(
    con: duckdb.DuckDBPyConnection, units: int, e: int, factor: str
) -> None:
    # `units + ½` minor units once the rates are applied: a tie by construction.
    target = Decimal(factor)
    amount = (Decimal(2 * units + 1) / 2).scaleb(-e) / target
    assume(amount == amount.quantize(Decimal("0.000001")))  # representable in DECIMAL(18, 6)
    got = sql_value(con, amount, Decimal(1), target, e)
    assert got == python_value(amount, Decimal(1), target, e)
    # The even neighbour: `units` when even, else `units + 1` (-2.5 → -2, -3.5 → -4).
    assert got.scaleb(e) == units + units % 2


@pytest.mark.parametrize("reporting", sample.REPORTING)
def test_the_rate_lookup_and_conversion_of_a_sample_warehouse(reporting: str) -> None:
    with duckdb.connect() as con:
        for statement in sample.setup_statements():
            con.execute(statement)
        got = {row[0]: tuple(row[1:]) for row in con.execute(sample.conversion_query(reporting)).fetchall()}
    expected = sample.reference(reporting)
    assert got == expected
    # The sample exercises every branch: converted, too old or unknown, same currency.
    assert {v[2] for v in expected.values()} == {True, False}
    assert any(v[1] is None and v[2] for v in expected.values())
