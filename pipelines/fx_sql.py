"""Exact conversion to the reporting currency in SQL, for the analysis views: the same results
as the Python reference `pipelines.fx.convert`, digit for digit, on DuckDB and Postgres.

Written in DuckDB's dialect like `pipelines/views.py`; `to_dialect` (or `adapt` on a sqlglot
tree) makes it Postgres. No DOUBLE is ever involved:

- DuckDB divides DECIMALs in DOUBLE (`/` and `//` alike), so every operand is scaled to an integer
  (amount × 10⁶, rates × 10⁸) and the quotient and remainder are taken in 128-bit integers
  (HUGEINT), where `//` and `%` are exact. On Postgres the same expression runs in NUMERIC
  (`DIV`, `%`): HUGEINT becomes NUMERIC.
- Rounding is decided exactly from the remainder, half to even (Postgres' `round(numeric)` rounds
  half away from zero, DuckDB's DECIMAL casts likewise: neither is used).
- Bounds: amounts are DECIMAL(18, 6) (|amount| < 10¹²) and rates DECIMAL(16, 8), so the
  numerator |amount|·10⁶ × rate·10⁸ × 10^exponent stays below 10¹⁸⁺¹⁶⁺⁴ = 10³⁸ < 2¹²⁷ for every
  ISO 4217 exponent (at most 4): no value in those types can overflow.

The rate lookup ("the latest rate on or before the day, at most 7 days old") is one portable
equi-join: `rate_days_query` spreads each rate over the days it applies to (its own day and up
to 7 after it, until the next rate), so a document finds its rate by `(currency, day)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from pipelines.fx import EUR, MAX_RATE_AGE_DAYS, minor_unit
from sources.ecb.settings import PER_EUR_SCALE

RATES_TABLE = "fx_rates"
RATE_DAYS = "fx_rate_days"
AMOUNT_SCALE = 6  # the money columns' DECIMAL(18, 6)


def rate_days_query(rates: str = RATES_TABLE) -> str:
    """A SELECT (DuckDB dialect) of `currency, day, rate_date, per_eur`: for every day and
    currency with a rate at most `MAX_RATE_AGE_DAYS` old, the latest rate on or before that day.

    Meant as the view `fx_rate_days` beside the analysis views (before them in dependency order).
    """
    offsets = ", ".join(f"({n})" for n in range(MAX_RATE_AGE_DAYS + 1))
    return f"""
SELECT r.currency, CAST(r.rate_date + o.n AS DATE) AS day, r.rate_date, r.per_eur
FROM (
    SELECT currency, rate_date, per_eur, LEAD(rate_date) OVER (PARTITION BY currency ORDER BY rate_date) AS next_date
    FROM {rates}
) AS r
CROSS JOIN (VALUES {offsets}) AS o(n)
WHERE r.next_date IS NULL OR r.rate_date + o.n < r.next_date
"""


def _scaled(value: str, scale: int) -> str:
    """`value` × 10^scale as an exact 128-bit integer (`value` has at most `scale` decimals)."""
    return f"CAST(CAST({value} AS DECIMAL(38, {scale})) * {10**scale} AS HUGEINT)"


def exact_conversion(amount: str, from_per_eur: str, to_per_eur: str, exponent: int) -> str:
    """`amount × to_per_eur ÷ from_per_eur`, rounded half to even to `exponent` decimals, as
    DECIMAL(38, exponent) (10¹² in a currency worth 10⁸ times less needs more than 18 digits); NULL
    when any operand is NULL.

    Args:
        amount: an expression of at most 6 decimals and |amount| < 10¹² (the money columns).
        from_per_eur, to_per_eur: rate expressions of at most 8 decimals, below 10⁸ (`per_eur`).
        exponent: decimals of the result (the reporting currency's minor unit, 0 to 4).
    """
    a = _scaled(amount, AMOUNT_SCALE)
    numerator = f"(ABS({a}) * {_scaled(to_per_eur, PER_EUR_SCALE)} * {10**exponent})"
    denominator = f"({_scaled(from_per_eur, PER_EUR_SCALE)} * {10**AMOUNT_SCALE})"
    quotient, remainder = f"({numerator} // {denominator})", f"({numerator} % {denominator})"
    # Half to even: up when the remainder is more than half, or exactly half and the quotient odd.
    up = f"CASE WHEN 2 * {remainder} > {denominator} OR (2 * {remainder} = {denominator} AND {quotient} % 2 = 1)"
    units = f"(SIGN({a}) * ({quotient} + {up} THEN 1 ELSE 0 END))"
    if exponent == 0:
        return f"CAST({units} AS DECIMAL(38, 0))"
    unit = f"CAST('{'0.' + '0' * (exponent - 1) + '1'}' AS DECIMAL({exponent + 1}, {exponent}))"
    return f"CAST(CAST({units} AS DECIMAL(38, 0)) * {unit} AS DECIMAL(38, {exponent}))"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class ToReporting:
    """The SQL pieces that give amounts in one reporting currency (DuckDB dialect).

    A query joins the rates of one day per `alias` (`joins`), then converts any amount of the
    row with `amount`, says which rate day it used with `rate_date`, and whether it could
    convert with `has_rate`:

        conv = ToReporting("USD")
        SELECT i.total, {conv.amount("i.total", "i.currency", "fx")} AS total_rc
        FROM invoices AS i {conv.joins("i.currency", "i.issue_date", "fx")}

    Attributes:
        reporting: the ISO 4217 code (`[analysis] reporting_currency`).
        rate_days: the relation of `rate_days_query` (the view `fx_rate_days`).
    """

    reporting: str = EUR
    rate_days: str = RATE_DAYS

    def __post_init__(self) -> None:
        minor_unit(self.reporting)  # refuses a code without a minor unit

    @property
    def exponent(self) -> int:
        return minor_unit(self.reporting)

    def joins(self, currency: str, day: str, alias: str) -> str:
        """LEFT JOINs of the rates of `day` (a DATE expression) for the row's `currency` and for
        the reporting currency, as `{alias}_from` and `{alias}_to` (no `_to` for EUR)."""
        condition = f"{alias}_from.currency = {currency} AND {alias}_from.day = {day}"
        own = f"LEFT JOIN {self.rate_days} AS {alias}_from ON {condition}"
        if self.reporting == EUR:
            return own
        target = f"{alias}_to.currency = {_literal(self.reporting)} AND {alias}_to.day = {day}"
        return f"{own}\nLEFT JOIN {self.rate_days} AS {alias}_to ON {target}"

    def _rates(self, currency: str, alias: str) -> tuple[str, str]:
        same = f"{currency} = {_literal(self.reporting)}"
        source = f"CASE WHEN {same} OR {currency} = 'EUR' THEN 1 ELSE {alias}_from.per_eur END"
        target = "1" if self.reporting == EUR else f"CASE WHEN {same} THEN 1 ELSE {alias}_to.per_eur END"
        return source, target

    def amount(self, amount: str, currency: str, alias: str) -> str:
        """`amount` (in the row's `currency`) in the reporting currency, DECIMAL(38, minor unit),
        rounded half to even; NULL without a rate. One in the reporting currency already needs
        no rate: it is only rounded to the minor unit."""
        source, target = self._rates(currency, alias)
        return exact_conversion(amount, source, target, self.exponent)

    def rate_date(self, currency: str, alias: str) -> str:
        """The day of the rate used (of the older of the two rates when both currencies need
        one); NULL when no rate is needed (the reporting currency itself) or none was found."""
        same = f"{currency} = {_literal(self.reporting)}"
        if self.reporting == EUR:
            return f"CASE WHEN {same} THEN NULL ELSE {alias}_from.rate_date END"
        own, other = f"{alias}_from.rate_date", f"{alias}_to.rate_date"
        return (
            f"CASE WHEN {same} THEN NULL WHEN {currency} = 'EUR' THEN {other} "
            f"WHEN {own} IS NULL OR {other} IS NULL THEN NULL WHEN {own} <= {other} THEN {own} ELSE {other} END"
        )

    def has_rate(self, currency: str, alias: str) -> str:
        """Whether a row of `currency` converts (the view's `unconverted` counts where it does not)."""
        source, target = self._rates(currency, alias)
        return f"({currency} IS NOT NULL AND ({source}) IS NOT NULL AND ({target}) IS NOT NULL)"


def adapt(tree: exp.Expr, dialect: str) -> exp.Expr:
    """`tree` (parsed from DuckDB) made to run on `dialect`: outside DuckDB, HUGEINT (which
    sqlglot writes as INT128, a type Postgres lacks) becomes NUMERIC, whose `DIV` and `%` are
    exact too. Apply before `tree.sql(dialect=...)`."""
    if dialect == "duckdb":
        return tree

    def numeric(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.INT128:
            return exp.DataType.build("DECIMAL")
        return node

    return tree.transform(numeric)


def to_dialect(sql: str, dialect: str) -> str:
    """`sql` (DuckDB dialect, with this module's expressions) written for `dialect`."""
    return adapt(sqlglot.parse_one(sql, read="duckdb"), dialect).sql(dialect=dialect)
