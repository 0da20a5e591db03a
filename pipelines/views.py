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

Decisions where the contract is silent (also in the README):
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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlglot
from sqlglot import exp

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


def _invoices_current(has_deleted_at: bool) -> str:
    live = "WHERE i.deleted_at IS NULL" if has_deleted_at else ""
    overdue = f"i.status IN {_OPEN} AND i.document_type NOT IN {_NOT_REVENUE} AND i.due_date < CURRENT_DATE"
    return f"""
SELECT
    i.*,
    CASE WHEN i.document_type IN {_CREDIT} THEN -i.total ELSE i.total END AS signed_total,
    CASE WHEN i.document_type IN {_CREDIT} THEN -i.balance_due ELSE i.balance_due END AS signed_balance_due,
    CASE WHEN i.document_type IN {_CREDIT} THEN -i.tax_total ELSE i.tax_total END AS signed_tax_total,
    COALESCE(i.document_type NOT IN {_NOT_REVENUE}, TRUE) AS is_billing_document,
    COALESCE({overdue}, FALSE) AS is_overdue,
    CASE WHEN {overdue} THEN CAST(CURRENT_DATE - i.due_date AS INTEGER) ELSE 0 END AS days_overdue
FROM invoices AS i
{live}
"""


# Zero as the money type, so that a sum of nothing but zeros reads 0.000000 on every destination
# (Postgres otherwise gives the scale of the literal, 0).
_ZERO = "CAST(0 AS DECIMAL(18, 6))"

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

_DSO = f"""
WITH receivable AS (
    SELECT provider, account, currency, SUM(signed_balance_due) AS outstanding
    FROM invoices_current
    WHERE {_RECEIVABLE}
    GROUP BY provider, account, currency
), recent AS (
    SELECT provider, account, currency, SUM(signed_total) AS net_revenue
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
    END AS dso_days
FROM receivable AS r
FULL OUTER JOIN recent AS s
    ON r.provider = s.provider AND r.account = s.account AND r.currency = s.currency
"""

# In dependency order: a view only reads views before it.
VIEW_NAMES = ("invoices_current", "revenue_monthly", "receivables_aging", "client_balances", "dso")
# The views on invoice_history (pipelines/history_views.py), after the others.
HISTORY_VIEW_NAMES = ("invoice_payments", "receivables_month_end")


def view_queries(has_deleted_at: bool, has_history: bool = True) -> dict[str, str]:
    """Each view's SELECT, in DuckDB's dialect with bare table names, in dependency order; the
    views on history only `has_history` (the dataset holds invoice_history and pipeline_runs)."""
    queries = {
        "invoices_current": _invoices_current(has_deleted_at),
        "revenue_monthly": _REVENUE_MONTHLY,
        "receivables_aging": _RECEIVABLES_AGING,
        "client_balances": _CLIENT_BALANCES,
        "dso": _DSO,
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
    return tree.sql(dialect=dialect)


def view_statements(client: Any, has_deleted_at: bool, has_history: bool = True) -> list[str]:
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
    for view, query in view_queries(has_deleted_at, has_history).items():
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


def refresh(client: Any) -> list[str]:
    """Create or update the views through an open dlt `sql_client`. Returns the views created;
    none when the dataset has no `invoices` table yet (nothing was loaded)."""
    columns = table_columns(client, "invoices")
    if not columns:
        log.info("no invoices table in %s yet: no views created", client.dataset_name)
        return []
    has_history = all(table_columns(client, table) for table in ("invoice_history", "pipeline_runs"))
    statements = view_statements(client, has_deleted_at="deleted_at" in columns, has_history=has_history)
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
