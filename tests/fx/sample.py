"""A fixed, seeded sample of rates and documents that both warehouses convert: rates with
weekends, a currency published weekly by a user with a gap longer than 7 days, documents in
EUR, in currencies without a rate, without a currency, negative (credit notes) and on ties."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from pipelines.fx import Rates
from pipelines.fx_sql import RATE_DAYS, ToReporting, rate_days_query
from sources.ecb import fx_rates_ddl

FIRST, LAST = dt.date(2026, 1, 1), dt.date(2026, 3, 31)
REPORTING = ("EUR", "USD", "JPY", "BHD", "KWD")
TYPICAL = {"USD": "1.1172", "JPY": "175.68", "GBP": "0.83380", "IDR": "20275.17", "BHD": "0.4212", "KWD": "0.3431"}


def rates(seed: int = 7) -> list[tuple[dt.date, str, Decimal, str]]:
    rng = random.Random(seed)
    rows = []
    day = FIRST
    while day <= LAST:
        for code, typical in TYPICAL.items():
            weekly = code in ("BHD", "KWD")  # a user's rates: Mondays only, none in February's 2nd half
            if (weekly and (day.weekday() != 0 or dt.date(2026, 2, 14) < day < dt.date(2026, 3, 2))) or (
                not weekly and day.weekday() >= 5
            ):
                continue
            decimals = len(typical.partition(".")[2])
            value = Decimal(typical) * (100000 + rng.randint(-3000, 3000)) / 100000
            rows.append((day, code, value.quantize(Decimal(1).scaleb(-decimals)), "user" if weekly else "ecb"))
        day += dt.timedelta(days=1)
    return rows


def invoices(seed: int = 11, count: int = 600) -> list[tuple[int, Decimal, str | None, dt.date]]:
    rng = random.Random(seed)
    codes = [*TYPICAL, "EUR", "EUR", "AED", None]
    rows: list[tuple[int, Decimal, str | None, dt.date]] = []
    for i in range(count):
        day = FIRST + dt.timedelta(days=rng.randint(-10, (LAST - FIRST).days + 12))
        kind = rng.random()
        if kind < 0.2:  # ties at some minor unit: x.xx5, x.5, ...
            amount = Decimal(rng.randint(-(10**6), 10**6) * 10 + 5).scaleb(-rng.choice((1, 2, 3, 4)))
        elif kind < 0.3:  # large, within DECIMAL(18, 6)
            amount = Decimal(rng.randint(-(10**18) + 1, 10**18 - 1)).scaleb(-6)
        else:
            amount = Decimal(rng.randint(-(10**9), 10**9)).scaleb(-rng.choice((0, 2, 6)))
        rows.append((i, amount, rng.choice(codes), day))
    return rows


def reference(reporting: str) -> dict[int, tuple[Decimal | None, dt.date | None, bool]]:
    """What the Python reference says for every sample document."""
    table = Rates.of((d, c, v) for d, c, v, _ in rates())
    result: dict[int, tuple[Decimal | None, dt.date | None, bool]] = {}
    for i, amount, code, day in invoices():
        if code is None:
            result[i] = (None, None, False)
            continue
        value = table.convert(amount, code, reporting, day)
        result[i] = (value, table.rate_date(code, reporting, day), value is not None)
    return result


def setup_statements() -> list[str]:
    """DuckDB-dialect statements that create and fill `fx_rates`, `invoices` and the view."""
    values = ", ".join(f"(DATE '{d}', '{c}', {v}, '{s}')" for d, c, v, s in rates())
    docs = ", ".join(
        f"({i}, CAST('{a}' AS DECIMAL(18, 6)), {'NULL' if c is None else repr(c)}, DATE '{d}')"
        for i, a, c, d in invoices()
    )
    return [
        fx_rates_ddl("fx_rates"),
        f"INSERT INTO fx_rates VALUES {values}",
        "CREATE TABLE invoices (id INTEGER, amount DECIMAL(18, 6), currency TEXT, issue_date DATE)",
        f"INSERT INTO invoices VALUES {docs}",
        f"CREATE VIEW {RATE_DAYS} AS {rate_days_query()}",
    ]


def conversion_query(reporting: str) -> str:
    conv = ToReporting(reporting)
    return f"""
SELECT i.id,
       {conv.amount("i.amount", "i.currency", "fx")} AS amount_rc,
       {conv.rate_date("i.currency", "fx")} AS fx_rate_date,
       {conv.has_rate("i.currency", "fx")} AS converted
FROM invoices AS i
{conv.joins("i.currency", "i.issue_date", "fx")}
ORDER BY i.id
"""
