"""The views' amounts in the reporting currency on DuckDB equal the Python reference computed from
the same `fx_rates` (tests/fx/warehouse.py): every document converted and rounded on its own, the
rows adding the rounded amounts, NULL and counted in `unconverted` where there is no rate.
Property tests over documents, days, currencies and reporting currencies (EUR, USD, JPY, BHD),
and the rules one at a time: the minor units of JPY and BHD, the 7-day rule, a currency nobody
publishes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fx import warehouse
from tests.fx.warehouse import Doc


class Warehouse:
    """One in-memory DuckDB with `fx_rates` around today, documents and views replaced at will."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        row = self.con.execute("SELECT CURRENT_DATE").fetchone()
        assert row is not None
        self.today: dt.date = row[0]
        self.rates = warehouse.rate_rows(self.today)
        for statement in warehouse.setup_statements(self.rates):
            self.con.execute(statement)
        self.reporting = ""

    def load(self, docs: list[Doc], reporting: str) -> None:
        warehouse.insert(self.con.execute, docs, "?")
        if reporting != self.reporting:
            for statement in warehouse.views("duckdb", reporting):
                self.con.execute(statement)
            self.reporting = reporting

    def view(self, name: str) -> dict[tuple[Any, ...], dict[str, Any]]:
        return warehouse.as_dict(name, self.con.execute(warehouse.query(name)).fetchall())

    def check(self, docs: list[Doc], reporting: str) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
        """Load `docs`, compare every view with the reference; returns the reference."""
        self.load(docs, reporting)
        want = warehouse.expected(docs, self.rates, reporting, self.today)
        exponent = warehouse.minor_unit(reporting)
        for name, rows in want.items():
            assert warehouse.differences(self.view(name), rows, exponent) == [], name
        return want


@pytest.fixture(scope="module")
def wh() -> Iterator[Warehouse]:
    w = Warehouse()
    yield w
    w.con.close()


TODAY = dt.datetime.now(dt.UTC).date()
AMOUNTS = st.one_of(
    st.integers(-(10**9), 10**9).map(lambda n: Decimal(n).scaleb(-2)),
    st.integers(0, 10**6).map(lambda n: Decimal(n * 10 + 5).scaleb(-3)),  # ties at 2 decimals
    st.integers(0, 10**18 - 1).map(lambda n: Decimal(n).scaleb(-6)),
)
DAYS = st.one_of(st.none(), st.integers(0, 95).map(lambda back: TODAY - dt.timedelta(days=back)))


@st.composite
def documents(draw: st.DrawFn) -> list[Doc]:
    docs = []
    for i in range(draw(st.integers(1, 14))):
        total = draw(st.one_of(st.none(), AMOUNTS))
        status = draw(st.sampled_from(warehouse.STATUSES))
        balance = draw(st.one_of(st.none(), st.just(total), AMOUNTS)) if status != "paid" else Decimal(0)
        issue = draw(DAYS)
        docs.append(
            Doc(
                f"d{i}",
                draw(st.sampled_from(("p1", "p2"))),
                draw(st.sampled_from(("c1", "c2"))),
                draw(st.sampled_from(warehouse.DOCUMENT_TYPES)),
                status,
                issue,
                draw(st.one_of(st.none(), DAYS)),
                draw(st.sampled_from(warehouse.CURRENCIES)),
                total,
                balance,
                draw(st.booleans()) and draw(st.booleans()),
            )
        )
    return docs


# Few examples: each reads five views, and DuckDB plans each in about 0.1 s. The arithmetic itself
# is tested over many more in test_sql_duckdb.py; these test the lookups, groups and counts.
@pytest.mark.parametrize("reporting", warehouse.REPORTING)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=documents())
def test_every_view_equals_the_reference(wh: Warehouse, reporting: str, docs: list[Doc]) -> None:
    wh.check(docs, reporting)


@pytest.mark.parametrize("reporting", warehouse.REPORTING)
def test_a_sample_of_every_kind_of_document(wh: Warehouse, reporting: str) -> None:
    docs = warehouse.sample_docs(wh.today, seed=5, count=400)
    want = wh.check(docs, reporting)
    current = want["invoices_current"]
    # The sample exercises what it should: converted, unconverted, the reporting currency itself.
    assert any(v["unconverted"] for v in current.values()) and any(v["total_rc"] for v in current.values())
    assert any(row["unconverted"] and row["net_rc"] is not None for row in want["revenue_monthly"].values())


def doc(invoice_id: str, currency: str, total: str, issue: dt.date, **more: Any) -> Doc:
    values: dict[str, Any] = {
        "provider": "p1",
        "client_id": "c1",
        "document_type": "invoice",
        "status": "open",
        "due_date": issue + dt.timedelta(days=30),
        "balance_due": Decimal(total),
    }
    values.update(more)
    return Doc(invoice_id, currency=currency, total=Decimal(total), issue_date=issue, **values)


def rate(wh: Warehouse, currency: str, on: dt.date) -> tuple[dt.date, Decimal]:
    found = max((d, v) for d, c, v, _ in wh.rates if c == currency and d <= on)
    return found


@pytest.mark.parametrize(("reporting", "decimals"), [("JPY", 0), ("BHD", 3)])
def test_jpy_and_bhd_as_reporting_currencies_round_to_their_minor_unit(
    wh: Warehouse, reporting: str, decimals: int
) -> None:
    day = wh.today - dt.timedelta(days=50)  # BHD has a rate then (not 25 to 40 days ago)
    docs = [doc("usd", "USD", "1234.56", day), doc("eur", "EUR", "0.01", day), doc("same", reporting, "10.4999", day)]
    want = wh.check(docs, reporting)
    current = wh.view("invoices_current")
    for key, row in current.items():
        assert row["total_rc"].as_tuple().exponent == -decimals, key
        assert row == want["invoices_current"][key]
    # By hand, for one: 1,234.56 USD at the rates of its day (the older of the two).
    (usd_day, usd), (target_day, target) = rate(wh, "USD", day), rate(wh, reporting, day)
    by_hand = (Decimal("1234.56") * target / usd).quantize(Decimal(1).scaleb(-decimals), "ROUND_HALF_EVEN")
    assert current[("usd",)]["total_rc"] == by_hand
    assert current[("usd",)]["fx_rate_date"] == min(usd_day, target_day)
    assert current[("same",)]["total_rc"] == Decimal("10.4999").quantize(Decimal(1).scaleb(-decimals))
    assert current[("same",)]["fx_rate_date"] is None  # no rate needed


def test_a_rate_is_used_for_7_days_and_no_longer(wh: Warehouse) -> None:
    """KWD's newest rate is 12 days old: documents 7 days after it convert, 8 days after do not,
    and nothing in KWD owed today does; each is counted, never guessed."""
    last = max(d for d, c, _, _ in wh.rates if c == "KWD")
    docs = [
        doc("on", "KWD", "100", last),
        doc("seventh", "KWD", "100", last + dt.timedelta(days=7)),
        doc("eighth", "KWD", "100", last + dt.timedelta(days=8)),
    ]
    wh.check(docs, "EUR")
    current = wh.view("invoices_current")
    assert [current[(k,)]["fx_rate_date"] for k in ("on", "seventh", "eighth")] == [last, last, None]
    assert current[("seventh",)]["total_rc"] is not None and current[("eighth",)]["total_rc"] is None
    assert all(current[(k,)]["balance_due_rc"] is None for k in ("on", "seventh", "eighth"))
    revenue = {k[3]: v for k, v in wh.view("revenue_monthly").items()}
    assert sum(v["unconverted"] for v in revenue.values()) == 1
    (aging,) = wh.view("receivables_aging").values()
    assert aging["unconverted"] == 3 and aging["outstanding_rc"] is None  # nothing of the row converts today


def test_a_currency_nobody_publishes_is_counted_in_every_view(wh: Warehouse) -> None:
    day = wh.today - dt.timedelta(days=20)
    docs = [doc("aed", "AED", "500", day), doc("eur", "EUR", "200", day), doc("usd", "USD", "300", day)]
    want = wh.check(docs, "USD")
    assert want["invoices_current"][("aed",)]["unconverted"] == 1
    for name in ("revenue_monthly", "receivables_aging", "client_balances", "dso"):
        rows = wh.view(name)
        aed = [v for k, v in rows.items() if "AED" in k]
        assert aed and all(v["unconverted"] == 1 for v in aed), name
        assert all(v["unconverted"] == 0 for k, v in rows.items() if "AED" not in k), name
    revenue = {k[2]: v for k, v in wh.view("revenue_monthly").items()}
    assert revenue["AED"]["net_rc"] is None and revenue["USD"]["net_rc"] == Decimal("300.00")


def test_a_row_adds_the_rounded_amounts_of_its_documents(wh: Warehouse) -> None:
    """Three documents of 0.005 EUR: each rounds to 0.00 (half to even), so the row is 0.00, not
    the 0.02 that rounding their sum, 0.015, would give."""
    day = wh.today - dt.timedelta(days=10)
    docs = [doc(f"t{i}", "EUR", "0.005", day) for i in range(3)]
    wh.check(docs, "EUR")
    (revenue,) = wh.view("revenue_monthly").values()
    assert revenue["net_rc"] == Decimal("0.00")


def test_a_query_with_a_limit_gets_its_rows(wh: Warehouse) -> None:
    """No rate today for KWD: DuckDB 2.0 would drop the LIMIT (or never answer) were today a
    constant in the join's condition (pipelines/views.py)."""
    day = wh.today - dt.timedelta(days=3)
    wh.load([doc(f"k{i}", "KWD", "1", day) for i in range(5)], "USD")
    assert len(wh.con.execute("SELECT * FROM billing.invoices_current LIMIT 2").fetchall()) == 2
    assert len(wh.con.execute("SELECT * FROM billing.receivables_aging LIMIT 1").fetchall()) == 1
