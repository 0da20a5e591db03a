"""The analysis layer: the contract's views (`docs/canonical-model.md`, "Views"), created or
updated after every load in the pipeline's own dataset, on any SQL destination.

The views are written once, in DuckDB's SQL dialect, with bare table names. `view_statements`
qualifies every table with the dataset (and the catalog where the destination has one) and
transpiles the SQL with sqlglot (which dlt depends on) into the destination's dialect; the
statements then run through the pipeline's own dlt `sql_client`, in one transaction.

Rules every view follows (from the contract):
- Drafts, void and deleted documents are left out, except in `invoices_current`, which keeps
  drafts and voids (it leaves out deleted ones only).
- Only billing documents count: receipts (payment documents) and non-billing documents
  (`NON_BILLING_TYPES`) are in no figure. A credit note counts negative: `signed_total` is
  `-total` and its open balance (`signed_balance_due`) is an unapplied credit.
- Amounts are grouped by currency, never summed across currencies.
- `deleted_at` (set after each load by `pipelines/deletions.py`) may not exist yet in a
  warehouse an older version created: the views look at the table's columns and only filter on
  `deleted_at` where it exists. Every other view reads `invoices_current`, so none counts a
  deleted document.

Decisions where the contract is silent (also in docs/querying.md, "The analysis views"):
- Receivables are open and partially paid documents only (the contract's words), so an
  `uncollectible` invoice is not in `receivables_aging`, `client_balances.outstanding` or the
  DSO; `client_balances.uncollectible` shows it instead. It still counts as revenue.
- A document without `due_date` cannot be aged: `receivables_aging.no_due_date` holds it, so
  the buckets still add up to `outstanding`.
- Ages and overdue days are counted to `current_date` of the session that queries the view
  (UTC in dlt's connections and in this project's readers).
- `revenue_monthly.credited` and `.tax` are signed (credit notes negative):
  `net = invoiced + credited`.
- `dso.dso_days` is NULL when the last 90 days' net revenue is not positive (DSO is undefined).

Amounts in the reporting currency (`[analysis] reporting_currency`, docs/reporting-currency.md):
- `invoices_current` converts each document on its own with `pipelines/fx_sql.py`, exactly and
  half to even to the reporting currency's minor unit: `total_rc` at the rate of `issue_date`,
  `balance_due_rc` at today's; NULL where there is no rate (none published on or in the 7 days
  before the day), never guessed. Its rates come from the view `fx_rate_days` over `fx_rates`
  (empty while the warehouse has no `fx_rates` table: nothing converts then).
- The other views add those rounded amounts (`_rc` columns) and count in `unconverted` the
  documents of the row whose amount had no rate: those are left out of the row's `_rc` sums, and
  a sum is NULL when none of the documents it needs could be converted. Read as 0, a NULL keeps
  `invoiced_rc + credited_rc = net_rc` true.
- Every view has the `reporting_currency` the amounts are in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlglot
from sqlglot import exp

from pipelines.fx import EUR
from pipelines.fx_sql import RATE_DAYS, RATES_TABLE, ToReporting, adapt, rate_days_query

log = logging.getLogger("billing.run")  # a run's own lines, shown at INFO

RECEIPT_TYPES = ("receipt",)
NON_BILLING_TYPES = ("quote", "proforma", "estimate", "shipping", "transport", "devolution", "purchase_order")
NOT_REVENUE_TYPES = RECEIPT_TYPES + NON_BILLING_TYPES
CREDIT_TYPES = ("credit_note",)
OPEN_STATUSES = ("open", "partially_paid")
EXCLUDED_STATUSES = ("draft", "void")
DSO_WINDOW_DAYS = 90


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


_CREDIT, _NOT_REVENUE, _OPEN, _EXCLUDED = (
    _in(CREDIT_TYPES),
    _in(NOT_REVENUE_TYPES),
    _in(OPEN_STATUSES),
    _in(EXCLUDED_STATUSES),
)

# `billed`: documents every figure counts (live billing documents, neither draft nor void).
_BILLED = f"is_billing_document AND status NOT IN {_EXCLUDED}"
_RECEIVABLE = f"is_billing_document AND status IN {_OPEN} AND balance_due IS NOT NULL"
# One client: its id, or for documents without one, the name printed on them.
_CLIENT_GROUP = "client_id, CASE WHEN client_id IS NULL THEN client_name END"


def _invoices_current(has_deleted_at: bool, conv: ToReporting) -> str:
    live = "WHERE i.deleted_at IS NULL" if has_deleted_at else ""
    overdue = f"i.status IN {_OPEN} AND i.document_type NOT IN {_NOT_REVENUE} AND i.due_date < CURRENT_DATE"
    # Each document on its own: the total at its issue date's rates, the balance at today's. Today
    # comes from a joined row, not a constant in the join's condition: DuckDB 2.0 drops a query's
    # LIMIT, or never answers, when a LEFT JOIN compares a column with a constant day.
    return f"""
SELECT
    c.*,
    CASE WHEN c.document_type IN {_CREDIT} THEN -c.total_rc ELSE c.total_rc END AS signed_total_rc,
    CASE WHEN c.document_type IN {_CREDIT} THEN -c.balance_due_rc ELSE c.balance_due_rc END AS signed_balance_due_rc,
    CASE
        WHEN (c.total IS NOT NULL AND c.total_rc IS NULL) OR (c.balance_due IS NOT NULL AND c.balance_due_rc IS NULL)
        THEN 1 ELSE 0
    END AS unconverted
FROM (
    SELECT
        i.*,
        CASE WHEN i.document_type IN {_CREDIT} THEN -i.total ELSE i.total END AS signed_total,
        CASE WHEN i.document_type IN {_CREDIT} THEN -i.balance_due ELSE i.balance_due END AS signed_balance_due,
        CASE WHEN i.document_type IN {_CREDIT} THEN -i.tax_total ELSE i.tax_total END AS signed_tax_total,
        COALESCE(i.document_type NOT IN {_NOT_REVENUE}, TRUE) AS is_billing_document,
        COALESCE({overdue}, FALSE) AS is_overdue,
        CASE WHEN {overdue} THEN CAST(CURRENT_DATE - i.due_date AS INTEGER) ELSE 0 END AS days_overdue,
        {conv.amount("i.total", "i.currency", "fx_issued")} AS total_rc,
        {conv.amount("i.balance_due", "i.currency", "fx_today")} AS balance_due_rc,
        {conv.rate_date("i.currency", "fx_issued")} AS fx_rate_date,
        {conv.rate_date("i.currency", "fx_today")} AS balance_fx_rate_date,
        '{conv.reporting}' AS reporting_currency
    FROM invoices AS i
    CROSS JOIN (SELECT CURRENT_DATE AS day) AS as_of
    {conv.joins("i.currency", "i.issue_date", "fx_issued")}
    {conv.joins("i.currency", "as_of.day", "fx_today")}
    {live}
) AS c
"""


def _rates_or_none(has_rates: bool) -> str:
    """The view `fx_rate_days`: the rate of each currency for each day (`rate_days_query`), or,
    while the warehouse has no `fx_rates`, no rate at all."""
    if has_rates:
        return rate_days_query(RATES_TABLE)
    return (
        "SELECT CAST(NULL AS TEXT) AS currency, CAST(NULL AS DATE) AS day, CAST(NULL AS DATE) AS rate_date, "
        "CAST(NULL AS DECIMAL(16, 8)) AS per_eur WHERE 1 = 0"
    )


def _rc_sum(amount_rc: str, needs: str, zero: str) -> str:
    """The sum of a row's converted amounts `amount_rc` over the documents where `needs` holds (and
    the amount is known): 0 when no document needs one, NULL when none that does could be converted,
    else the sum of those that could (the others are counted in `unconverted`)."""
    return (
        f"CASE WHEN COUNT(CASE WHEN {needs} THEN 1 END) > 0 AND COUNT(CASE WHEN {needs} THEN {amount_rc} END) = 0 "
        f"THEN NULL ELSE COALESCE(SUM(CASE WHEN {needs} THEN {amount_rc} END), {zero}) END"
    )


def _unconverted(amount: str, amount_rc: str, needs: str = "TRUE") -> str:
    """How many documents of the row have `amount` but no rate for it."""
    return f"COUNT(CASE WHEN {needs} AND {amount} IS NOT NULL AND {amount_rc} IS NULL THEN 1 END)"


# Zero as the money type, so that a sum of nothing but zeros reads 0.000000 on every destination
# (Postgres otherwise gives the scale of the literal, 0).
_ZERO = "CAST(0 AS DECIMAL(18, 6))"


def _zero_rc(conv: ToReporting) -> str:
    return f"CAST(0 AS DECIMAL(38, {conv.exponent}))"


def _revenue_monthly(conv: ToReporting) -> str:
    zero, issued = _zero_rc(conv), "total IS NOT NULL"
    invoiced = _rc_sum("signed_total_rc", f"{issued} AND document_type NOT IN {_CREDIT}", zero)
    credited = _rc_sum("signed_total_rc", f"{issued} AND document_type IN {_CREDIT}", zero)
    return _REVENUE_MONTHLY.replace(
        "\nFROM invoices_current",
        f""",
    {invoiced} AS invoiced_rc,
    {credited} AS credited_rc,
    {_rc_sum("signed_total_rc", issued, zero)} AS net_rc,
    '{conv.reporting}' AS reporting_currency,
    {_unconverted("total", "total_rc")} AS unconverted
FROM invoices_current""",
    )


_REVENUE_MONTHLY = f"""
SELECT
    provider,
    account,
    currency,
    CAST(DATE_TRUNC('month', issue_date) AS DATE) AS month,
    COUNT(*) AS documents,
    SUM(CASE WHEN document_type NOT IN {_CREDIT} THEN signed_total ELSE {_ZERO} END) AS invoiced,
    SUM(CASE WHEN document_type IN {_CREDIT} THEN signed_total ELSE {_ZERO} END) AS credited,
    SUM(signed_total) AS net,
    SUM(signed_tax_total) AS tax
FROM invoices_current
WHERE {_BILLED}
GROUP BY provider, account, currency, CAST(DATE_TRUNC('month', issue_date) AS DATE)
"""

_AGE = "CURRENT_DATE - due_date"
_RECEIVABLES_AGING = f"""
SELECT
    provider,
    account,
    currency,
    client_id,
    MAX(client_name) AS client_name,
    COUNT(*) AS documents,
    SUM(CASE WHEN due_date IS NULL THEN signed_balance_due ELSE {_ZERO} END) AS no_due_date,
    SUM(CASE WHEN {_AGE} <= 0 THEN signed_balance_due ELSE {_ZERO} END) AS not_yet_due,
    SUM(CASE WHEN {_AGE} BETWEEN 1 AND 30 THEN signed_balance_due ELSE {_ZERO} END) AS days_1_30,
    SUM(CASE WHEN {_AGE} BETWEEN 31 AND 60 THEN signed_balance_due ELSE {_ZERO} END) AS days_31_60,
    SUM(CASE WHEN {_AGE} BETWEEN 61 AND 90 THEN signed_balance_due ELSE {_ZERO} END) AS days_61_90,
    SUM(CASE WHEN {_AGE} > 90 THEN signed_balance_due ELSE {_ZERO} END) AS days_over_90,
    SUM(signed_balance_due) AS outstanding
FROM invoices_current
WHERE {_RECEIVABLE}
GROUP BY provider, account, currency, {_CLIENT_GROUP}
"""


def _receivables_aging(conv: ToReporting) -> str:
    zero, overdue = _zero_rc(conv), f"due_date IS NOT NULL AND {_AGE} >= 1"
    return _RECEIVABLES_AGING.replace(
        "\nFROM invoices_current",
        f""",
    {_rc_sum("signed_balance_due_rc", "TRUE", zero)} AS outstanding_rc,
    {_rc_sum("signed_balance_due_rc", overdue, zero)} AS overdue_rc,
    MIN(balance_fx_rate_date) AS fx_rate_date,
    '{conv.reporting}' AS reporting_currency,
    {_unconverted("balance_due", "balance_due_rc")} AS unconverted
FROM invoices_current""",
    )


_CLIENT_BALANCES = f"""
SELECT
    provider,
    account,
    client_id,
    MAX(client_name) AS client_name,
    currency,
    COUNT(*) AS documents,
    SUM(signed_total) AS invoiced,
    SUM(CASE WHEN balance_due IS NOT NULL THEN signed_total - signed_balance_due ELSE {_ZERO} END) AS paid,
    SUM(CASE WHEN status IN {_OPEN} THEN COALESCE(signed_balance_due, {_ZERO}) ELSE {_ZERO} END)
        AS outstanding,
    SUM(CASE WHEN status = 'uncollectible' THEN COALESCE(signed_balance_due, {_ZERO}) ELSE {_ZERO} END)
        AS uncollectible,
    MAX(CASE WHEN document_type NOT IN {_CREDIT} THEN issue_date END) AS last_invoice_date,
    MIN(
        CASE WHEN status IN {_OPEN} AND document_type NOT IN {_CREDIT} AND balance_due > 0 THEN due_date END
    ) AS oldest_unpaid_due_date
FROM invoices_current
WHERE {_BILLED}
GROUP BY provider, account, currency, {_CLIENT_GROUP}
"""


def _client_balances(conv: ToReporting) -> str:
    owed = f"status IN {_OPEN} AND balance_due IS NOT NULL"
    return _CLIENT_BALANCES.replace(
        "\nFROM invoices_current",
        f""",
    {_rc_sum("signed_balance_due_rc", owed, _zero_rc(conv))} AS outstanding_rc,
    '{conv.reporting}' AS reporting_currency,
    {_unconverted("balance_due", "balance_due_rc", owed)} AS unconverted
FROM invoices_current""",
    )


_DSO = f"""
WITH receivable AS (
    SELECT provider, account, currency, SUM(signed_balance_due) AS outstanding{{receivable_rc}}
    FROM invoices_current
    WHERE {_RECEIVABLE}
    GROUP BY provider, account, currency
), recent AS (
    SELECT provider, account, currency, SUM(signed_total) AS net_revenue{{recent_rc}}
    FROM invoices_current
    WHERE {_BILLED}
      AND issue_date > CURRENT_DATE - {DSO_WINDOW_DAYS} AND issue_date <= CURRENT_DATE
    GROUP BY provider, account, currency
)
SELECT
    COALESCE(r.provider, s.provider) AS provider,
    COALESCE(r.account, s.account) AS account,
    COALESCE(r.currency, s.currency) AS currency,
    COALESCE(r.outstanding, {_ZERO}) AS outstanding,
    COALESCE(s.net_revenue, {_ZERO}) AS net_revenue_90d,
    CASE
        WHEN s.net_revenue > 0
        THEN CAST(COALESCE(r.outstanding, {_ZERO}) * {DSO_WINDOW_DAYS} / s.net_revenue AS DECIMAL(18, 1))
    END AS dso_days{{rc}}
FROM receivable AS r
FULL OUTER JOIN recent AS s
    ON r.provider = s.provider AND r.account = s.account AND r.currency = s.currency
"""


def _dso(conv: ToReporting) -> str:
    zero = _zero_rc(conv)
    return _DSO.format(
        receivable_rc=(
            f", {_rc_sum('signed_balance_due_rc', 'TRUE', zero)} AS outstanding_rc, "
            f"{_unconverted('balance_due', 'balance_due_rc')} AS unconverted"
        ),
        recent_rc=(
            f", {_rc_sum('signed_total_rc', 'total IS NOT NULL', zero)} AS net_revenue_rc, "
            # A document counted once: not again when its balance had no rate either.
            f"{_unconverted('total', 'total_rc', f'NOT COALESCE({_RECEIVABLE} AND balance_due_rc IS NULL, FALSE)')}"
            " AS unconverted"
        ),
        rc=f""",
    CASE WHEN r.provider IS NULL THEN {zero} ELSE r.outstanding_rc END AS outstanding_rc,
    CASE WHEN s.provider IS NULL THEN {zero} ELSE s.net_revenue_rc END AS net_revenue_90d_rc,
    '{conv.reporting}' AS reporting_currency,
    COALESCE(r.unconverted, 0) + COALESCE(s.unconverted, 0) AS unconverted""",
    )


# In dependency order: a view only reads views before it.
VIEW_NAMES = (RATE_DAYS, "invoices_current", "revenue_monthly", "receivables_aging", "client_balances", "dso")
# The views on invoice_history (pipelines/history_views.py), after the others.
HISTORY_VIEW_NAMES = ("invoice_payments", "receivables_month_end")


def view_queries(
    has_deleted_at: bool, reporting: str = EUR, has_rates: bool = True, has_history: bool = True
) -> dict[str, str]:
    """Each view's SELECT, in DuckDB's dialect with bare table names, in dependency order, with
    amounts also in the `reporting` currency (from `fx_rates`, when the warehouse `has_rates`);
    the views on history only `has_history` (the dataset holds invoice_history and pipeline_runs)."""
    conv = ToReporting(reporting, RATE_DAYS)
    queries = {
        RATE_DAYS: _rates_or_none(has_rates),
        "invoices_current": _invoices_current(has_deleted_at, conv),
        "revenue_monthly": _revenue_monthly(conv),
        "receivables_aging": _receivables_aging(conv),
        "client_balances": _client_balances(conv),
        "dso": _dso(conv),
    }
    if has_history:
        from pipelines.history_views import history_view_queries

        queries.update(history_view_queries())
    return queries


def qualify(query: str, path: Any, dialect: str) -> str:
    """`query` (DuckDB dialect) with every table that is not a CTE given the path `path(name)`
    returns (`[dataset, name]` or `[catalog, dataset, name]`), written in `dialect`."""
    tree = sqlglot.parse_one(query, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if table.args.get("db") is None and table.name not in ctes:
            parts = list(path(table.name))
            table.set("this", exp.to_identifier(parts[-1], quoted=True))
            table.set("db", exp.to_identifier(parts[-2], quoted=True))
            if len(parts) > 2:
                table.set("catalog", exp.to_identifier(parts[-3], quoted=True))
    return adapt(tree, dialect).sql(dialect=dialect)


def view_statements(
    client: Any, has_deleted_at: bool, reporting: str = EUR, has_rates: bool = True, has_history: bool = True
) -> list[str]:
    """The statements that (re)create every view, for `client`'s destination: the old views
    are dropped (dependents first) and created again, so a changed column list is no error on
    any destination (Postgres' `CREATE OR REPLACE VIEW` cannot drop or reorder columns)."""
    dialect = str(client.capabilities.sqlglot_dialect or "duckdb")

    def path(name: str) -> list[str]:
        return list(client.make_qualified_table_name_path(name, quote=False))

    def name_of(view: str) -> str:
        return ".".join(client.capabilities.escape_identifier(p) for p in path(view))

    every = (*VIEW_NAMES, *HISTORY_VIEW_NAMES)
    statements = [f"DROP VIEW IF EXISTS {name_of(view)}" for view in reversed(every)]
    for view, query in view_queries(has_deleted_at, reporting, has_rates, has_history).items():
        statements.append(f"CREATE VIEW {name_of(view)} AS {qualify(query, path, dialect)}")
    return statements


def table_columns(client: Any, table: str) -> set[str]:
    """The columns `table` has in the destination (empty when it does not exist)."""
    dataset = client.capabilities.casefold_identifier(client.dataset_name)
    rows = client.execute_sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        dataset,
        client.capabilities.casefold_identifier(table),
    )
    return {str(r[0]).lower() for r in rows or []}


def refresh(client: Any, reporting: str | None = None) -> list[str]:
    """Create or update the views through an open dlt `sql_client`, amounts also in `reporting`
    (default `[analysis] reporting_currency`). Returns the views created; none when the dataset
    has no `invoices` table yet (nothing was loaded)."""
    from pipelines.rates import reporting_currency

    columns = table_columns(client, "invoices")
    if not columns:
        log.info("no invoices table in %s yet: no views created", client.dataset_name)
        return []
    has_rates = bool(table_columns(client, RATES_TABLE))
    has_history = all(table_columns(client, table) for table in ("invoice_history", "pipeline_runs"))
    reporting = reporting or reporting_currency()
    statements = view_statements(client, "deleted_at" in columns, reporting, has_rates, has_history)
    with client.begin_transaction():
        for statement in statements:
            client.execute_sql(statement)
    return [*VIEW_NAMES, *(HISTORY_VIEW_NAMES if has_history else ())]


def refresh_views(pipeline: Any) -> list[str]:
    """Create or update the contract's views in the dataset of a dlt `pipeline`."""
    with pipeline.sql_client() as client:
        return refresh(client)


def refresh_after_run(pipeline: Any) -> bool:
    """`refresh_views` at the end of a load or reset: says on stderr what happened and returns
    False (the run then exits 1) when the views could not be created."""
    from sources.shared.redact import redact

    try:
        created = refresh_views(pipeline)
    except Exception as exc:
        log.error("the analysis views could not be refreshed: %s", redact(str(exc)))
        return False
    if created:
        log.info("views refreshed in %s: %s", pipeline.dataset_name, ", ".join(created))
    return True
