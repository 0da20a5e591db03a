"""The views on `invoice_history` (docs/canonical-model.md, "Views on history"; docs/history.md),
in DuckDB's SQL dialect with bare table names, created with the other views by
`pipelines/views.py` (qualified and transpiled there) once the dataset holds `invoice_history`
and `pipeline_runs`.

- `invoice_payments`: one row per live billing document (neither draft nor void, credit notes
  aside) that reached `paid`, observed (a history row says `paid`) or reported (the provider's
  `status` or `paid_at`). `paid_by` is the start of the run that first saw it paid;
  `paid_not_before` the start (`pipeline_runs.started_at`) of the account's last successful run
  before it, NULL when the invoice was paid when first seen. `paid_on` is the day it was paid as
  far as known: `paid_at`'s, else `paid_by`'s when a run saw it unpaid before (an invoice paid
  when first seen was paid on a day no run saw: NULL); `days_to_pay` counts from `issue_date`
  to `paid_on`, `days_late` from `due_date` to it.
- `receivables_month_end`: per provider, account, currency and month, from the month of the
  first history row of that provider, account and currency to the current month, what was
  outstanding at the end of the month's last day (`month_end`; today for the current month)
  and its aging buckets on that day, as `receivables_aging` counts them: open and partially
  paid billing documents, not deleted, credit notes negative, by days from `due_date` to
  `month_end`. The state of an invoice at the end of a day is its history row that began on
  or before that day (UTC) and did not end by it; for the current month, its current row, so
  that the latest month agrees with `receivables_aging`. A document's type (which never
  changes) is read from `invoices`; everything else comes from the history.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.views import CREDIT_TYPES, EXCLUDED_STATUSES, NOT_REVENUE_TYPES, OPEN_STATUSES


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


_CREDIT, _NOT_REVENUE, _OPEN, _EXCLUDED = (
    _in(CREDIT_TYPES),
    _in(NOT_REVENUE_TYPES),
    _in(OPEN_STATUSES),
    _in(EXCLUDED_STATUSES),
)
_ZERO = "CAST(0 AS DECIMAL(18, 6))"
_KEYS = "h.provider = i.provider AND h.account = i.account AND h.invoice_id = i.invoice_id"


def _utc_day(column: str) -> str:
    return f"CAST({column} AT TIME ZONE 'UTC' AS DATE)"


# `paid_not_before` is the last successful run's start before `paid_by`: a running maximum over
# the account's runs and payments in time order (a payment before a run of the same instant),
# which costs a sort, where a join of every payment with every earlier run grows with both.
_INVOICE_PAYMENTS = f"""
WITH seen AS (
    SELECT
        provider,
        account,
        invoice_id,
        MIN(valid_from) AS first_seen,
        MIN(CASE WHEN status = 'paid' THEN valid_from END) AS paid_by
    FROM invoice_history
    GROUP BY provider, account, invoice_id
), events AS (
    SELECT provider, account, invoice_id, paid_by AS happened, 0 AS kind, CAST(NULL AS TIMESTAMPTZ) AS started_at
    FROM seen
    WHERE paid_by > first_seen
    UNION ALL
    SELECT provider, account, NULL AS invoice_id, started_at AS happened, 1 AS kind, started_at
    FROM pipeline_runs
    WHERE status = 'loaded'
), before_paid AS (
    SELECT provider, account, invoice_id, paid_not_before
    FROM (
        SELECT
            provider,
            account,
            invoice_id,
            kind,
            MAX(started_at) OVER (
                PARTITION BY provider, account ORDER BY happened, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS paid_not_before
        FROM events
    ) AS ordered
    WHERE kind = 0
), paid AS (
    SELECT
        i.provider,
        i.account,
        i.invoice_id,
        i.client_id,
        i.client_name,
        i.currency,
        i.total,
        i.issue_date,
        i.due_date,
        i.paid_at,
        b.paid_not_before,
        s.paid_by,
        CASE
            WHEN i.paid_at IS NOT NULL THEN {_utc_day("i.paid_at")}
            WHEN s.paid_by > s.first_seen THEN {_utc_day("s.paid_by")}
        END AS paid_on
    FROM invoices_current AS i
    JOIN seen AS s ON s.provider = i.provider AND s.account = i.account AND s.invoice_id = i.invoice_id
    LEFT JOIN before_paid AS b ON b.provider = i.provider AND b.account = i.account AND b.invoice_id = i.invoice_id
    WHERE i.is_billing_document
      AND i.status NOT IN {_EXCLUDED}
      AND COALESCE(i.document_type NOT IN {_CREDIT}, TRUE)
      AND (s.paid_by IS NOT NULL OR i.status = 'paid' OR i.paid_at IS NOT NULL)
)
SELECT
    provider,
    account,
    invoice_id,
    client_id,
    client_name,
    currency,
    total,
    issue_date,
    due_date,
    paid_at,
    paid_not_before,
    paid_by,
    paid_on,
    CAST(paid_on - issue_date AS INTEGER) AS days_to_pay,
    CAST(paid_on - due_date AS INTEGER) AS days_late
FROM paid
"""

_AGE = "month_end - due_date"
_THIS_MONTH = "CAST(DATE_TRUNC('month', CURRENT_DATE) AS DATE)"
# An invoice's state at the end of a past month end is the row that began before the next day
# began (UTC) and had not ended by then: compared as instants with that day's start, computed
# once per month, so that no history row is converted. The current month takes current rows.
_RECEIVABLES_MONTH_END = f"""
WITH RECURSIVE states AS (
    SELECT
        h.provider,
        h.account,
        h.currency,
        h.due_date,
        h.valid_from,
        h.valid_to,
        CASE WHEN i.document_type IN {_CREDIT} THEN -h.balance_due ELSE h.balance_due END AS signed_balance_due
    FROM invoice_history AS h
    JOIN invoices AS i ON {_KEYS}
    WHERE NOT h.deleted
      AND h.status IN {_OPEN}
      AND h.balance_due IS NOT NULL
      AND COALESCE(i.document_type NOT IN {_NOT_REVENUE}, TRUE)
), firsts AS (
    SELECT provider, account, currency, CAST(DATE_TRUNC('month', MIN(valid_from) AT TIME ZONE 'UTC') AS DATE) AS month
    FROM invoice_history
    GROUP BY provider, account, currency
), months AS (
    SELECT provider, account, currency, month FROM firsts
    UNION ALL
    SELECT provider, account, currency, CAST(month + INTERVAL 1 MONTH AS DATE) AS month
    FROM months
    WHERE month < {_THIS_MONTH}
), ends AS (
    SELECT
        provider,
        account,
        currency,
        month,
        CASE
            WHEN month = {_THIS_MONTH} THEN CURRENT_DATE
            ELSE CAST(CAST(month + INTERVAL 1 MONTH AS DATE) - INTERVAL 1 DAY AS DATE)
        END AS month_end
    FROM months
), past AS (
    SELECT DISTINCT month, month_end, CAST(month_end + 1 AS TIMESTAMP) AT TIME ZONE 'UTC' AS next_day
    FROM ends
    WHERE month < {_THIS_MONTH}
), standing AS (
    SELECT s.provider, s.account, s.currency, p.month, p.month_end, s.due_date, s.signed_balance_due
    FROM states AS s
    JOIN past AS p
        ON s.valid_from < p.next_day AND COALESCE(s.valid_to, CAST('infinity' AS TIMESTAMPTZ)) >= p.next_day
    UNION ALL
    SELECT provider, account, currency, {_THIS_MONTH} AS month, CURRENT_DATE AS month_end, due_date, signed_balance_due
    FROM states
    WHERE valid_to IS NULL
), figures AS (
    SELECT
        provider,
        account,
        currency,
        month,
        COUNT(*) AS documents,
        SUM(CASE WHEN due_date IS NULL THEN signed_balance_due ELSE {_ZERO} END) AS no_due_date,
        SUM(CASE WHEN {_AGE} <= 0 THEN signed_balance_due ELSE {_ZERO} END) AS not_yet_due,
        SUM(CASE WHEN {_AGE} BETWEEN 1 AND 30 THEN signed_balance_due ELSE {_ZERO} END) AS days_1_30,
        SUM(CASE WHEN {_AGE} BETWEEN 31 AND 60 THEN signed_balance_due ELSE {_ZERO} END) AS days_31_60,
        SUM(CASE WHEN {_AGE} BETWEEN 61 AND 90 THEN signed_balance_due ELSE {_ZERO} END) AS days_61_90,
        SUM(CASE WHEN {_AGE} > 90 THEN signed_balance_due ELSE {_ZERO} END) AS days_over_90,
        SUM(signed_balance_due) AS outstanding
    FROM standing
    GROUP BY provider, account, currency, month
)
SELECT
    e.provider,
    e.account,
    e.currency,
    e.month,
    e.month_end,
    COALESCE(f.documents, 0) AS documents,
    COALESCE(f.no_due_date, {_ZERO}) AS no_due_date,
    COALESCE(f.not_yet_due, {_ZERO}) AS not_yet_due,
    COALESCE(f.days_1_30, {_ZERO}) AS days_1_30,
    COALESCE(f.days_31_60, {_ZERO}) AS days_31_60,
    COALESCE(f.days_61_90, {_ZERO}) AS days_61_90,
    COALESCE(f.days_over_90, {_ZERO}) AS days_over_90,
    COALESCE(f.outstanding, {_ZERO}) AS outstanding
FROM ends AS e
LEFT JOIN figures AS f
    ON f.provider = e.provider
    AND f.account = e.account
    AND COALESCE(f.currency, '') = COALESCE(e.currency, '')
    AND f.month = e.month
"""


def history_view_queries() -> dict[str, str]:
    """Each history view's SELECT, in DuckDB's dialect with bare table names, in dependency order
    (after `invoices_current`, which `invoice_payments` reads)."""
    return {"invoice_payments": _INVOICE_PAYMENTS, "receivables_month_end": _RECEIVABLES_MONTH_END}
