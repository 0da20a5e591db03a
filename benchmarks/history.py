"""What the invoice history costs: a rerun with nothing changed, with and without it, and the views
on a history of a million observations.

1. Rerun. InvoiceXpress has no change filter or update cursor: every run rewrites every document,
   so every invoice of a rerun hands the history a candidate and dlt's `scd2` merge compares it
   with the invoice's current row, the history's worst case. The same account (about
   `history_invoices` invoices, no latency) is loaded into two warehouses, one keeping history
   (`pipelines/history.py`: the run's `begin`, the candidates in the load packages, `settle`
   after the load) and one not; then both are loaded again `history_reruns` times, the two
   warehouses in turn, and the median rerun of each is compared. The rerun must add no history
   row; the tables are checked against the sandbox after every run.
2. The views. A history of `history_observations` rows (a quarter as many invoices, each
   draft → open → partially paid → paid, voided or open again, one run a day over two years,
   four provider accounts, three currencies) is written directly into a DuckDB file with the
   tables the views read; `receivables_month_end` and `invoice_payments` are then read in full
   (the median of three reads each).
"""

from __future__ import annotations

import datetime as dt
import math
import resource
import statistics
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.common import (
    Scale,
    Section,
    Target,
    Timer,
    check,
    db_path,
    environ,
    fmt_int,
    fmt_s,
    fmt_x,
    pipeline_in,
    query,
    workdir,
)
from benchmarks.rerun import _check_tables
from benchmarks.serve import SandboxProcess
from pipelines import history
from pipelines.registry import discover
from pipelines.summary import Outcome
from pipelines.views import qualify, view_queries
from sandbox.invoicexpress import bench_options
from sources.shared import history as observed

TITLE = "8. Invoice history"
HEADERS = ["measure", "setup", "first run (wall / CPU)", "rerun (wall / CPU) or read, median", "rows added / read"]
PROVIDER = "invoicexpress"
PER_CLIENT = 90  # InvoiceXpress's bench_options: documents per client
ROWS = "SELECT count(*) FROM billing.invoice_history"
VIEW_TARGET_SECONDS = 3.0
RERUN_TARGET = 1.10


def _cpu() -> float:
    """CPU seconds of this process so far, every thread's (DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _one_run(pipeline: Any, env: dict[str, str], keep: bool, label: str) -> tuple[float, float]:
    """One load of the provider's source into `pipeline`; with `keep`, as a run keeping history
    does it (its start and id observed, the history settled after the load). Returns its wall
    and CPU seconds."""
    provider = discover()[PROVIDER]
    cpu = _cpu()
    with environ(env), Timer() as timer:
        if keep:
            started = dt.datetime.now(dt.UTC)
            history.begin(pipeline, f"{started:%Y%m%dT%H%M%S%fZ}-{label}", started)
        try:
            pipeline.run(provider.source(), loader_file_format="parquet")
            if keep:
                history.settle(pipeline, [Outcome(PROVIDER, "loaded", "sandbox")])
        finally:
            observed.observe(None)
    return timer.seconds, _cpu() - cpu


def rerun_cost(scale: Scale) -> tuple[list[list[str]], list[Target], list[str]]:
    clients = max(1, math.ceil(scale.history_invoices / PER_CLIENT))
    rows: list[list[str]] = []
    with SandboxProcess(PROVIDER, latency=0.0, **bench_options(clients)) as sandbox, workdir("history-") as work:
        env = dict(sandbox.env, **{discover()[PROVIDER].env("requests_per_minute"): "0"})
        pipelines = {keep: pipeline_in(work / ("kept" if keep else "plain"), "bench") for keep in (False, True)}
        firsts = {keep: _one_run(p, env, keep, "first") for keep, p in pipelines.items()}  # (wall, CPU)
        summary = sandbox.summary()
        invoices = int(summary["invoices"])
        for keep in pipelines:
            _check_tables(db_path(work / ("kept" if keep else "plain")), PROVIDER, summary, "first run")
        kept_db = db_path(work / "kept")
        (after_first,) = query(kept_db, ROWS)[0]
        check(after_first == invoices, f"history after the first run: {after_first} rows, {invoices} invoices")
        reruns: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for n in range(scale.history_reruns):
            for keep, p in pipelines.items():
                reruns[keep].append(_one_run(p, env, keep, f"rerun{n}"))
                _check_tables(db_path(work / ("kept" if keep else "plain")), PROVIDER, summary, f"rerun {n + 1}")
        (after_reruns,) = query(kept_db, ROWS)[0]
        (current,) = query(kept_db, f"{ROWS} WHERE valid_to IS NULL")[0]
    check(current == invoices, f"{current} current history rows for {invoices} invoices")
    added = int(after_reruns) - int(after_first)
    wall = {keep: statistics.median(w for w, _ in runs) for keep, runs in reruns.items()}
    cpu = {keep: statistics.median(c for _, c in runs) for keep, runs in reruns.items()}
    setup = f"{clients:,} clients × {PER_CLIENT} documents = {invoices:,} invoices, no latency"
    for keep in (False, True):
        each = ", ".join(f"{fmt_s(w)} / {fmt_s(c)}" for w, c in reruns[keep])
        rows.append(
            [
                "rerun, nothing changed, " + ("keeping history" if keep else "without history"),
                setup,
                f"{fmt_s(firsts[keep][0])} / {fmt_s(firsts[keep][1])}",
                f"{fmt_s(wall[keep])} / {fmt_s(cpu[keep])} ({each})",
                fmt_int(added) if keep else "-",
            ]
        )
    ratio, wall_ratio = cpu[True] / cpu[False], wall[True] / wall[False]
    targets = [
        Target("history: rows a rerun with nothing changed adds", "0", fmt_int(added), added == 0),
        Target(
            f"history: rerun of {invoices:,} unchanged invoices vs without history (CPU)",
            f"< {RERUN_TARGET:.2f}x",
            f"{fmt_x(ratio)} (wall {fmt_x(wall_ratio)})",
            ratio < RERUN_TARGET,
        ),
    ]
    notes = [
        f"Rerun: {PROVIDER} rewrites every document on every run, so each rerun hands the history "
        f"{invoices:,} candidates, which dlt's scd2 merge compares with the current rows (none added). The two "
        f"warehouses are rerun in turn, {scale.history_reruns} time(s) each; figures are wall / CPU seconds of "
        "`history.begin` + `pipeline.run` (extract, normalize, load) + `history.settle`, medians first, each rerun "
        "in brackets. The target compares CPU seconds of the pipeline's process (every thread, DuckDB's included; "
        "the sandbox runs in its own process): on a machine shared with other work, wall time varies by more than "
        "the difference measured. The tables are checked against the sandbox after every run."
    ]
    return rows, targets, notes


def write_history(db: Path, observations: int) -> tuple[int, int]:
    """A warehouse file holding `observations` history rows of invoices over two years, with the
    invoices and pipeline_runs the views read. Returns (invoices, history rows)."""
    invoices = max(4, observations // 4)
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=730)
    with duckdb.connect(str(db)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE SCHEMA billing")
        con.execute(
            f"""CREATE TABLE billing.invoices AS
            SELECT 'p' || (n % 4) AS provider, 'account' || (n % 4) AS account, CAST(n AS VARCHAR) AS invoice_id,
                'c' || (n % 997) AS client_id, 'Client ' || (n % 997) AS client_name,
                CASE WHEN n % 50 = 0 THEN 'credit_note' ELSE 'invoice' END AS document_type,
                CASE n % 10 WHEN 0 THEN 'open' WHEN 1 THEN 'void' ELSE 'paid' END AS status,
                DATE '{start}' + CAST(n % 640 AS INTEGER) AS issue_date,
                DATE '{start}' + CAST(n % 640 AS INTEGER) + 30 AS due_date,
                ['EUR', 'USD', 'GBP'][1 + n % 3] AS currency,
                CAST(100 + n % 9000 AS DECIMAL(18, 6)) AS total,
                CAST(CASE n % 10 WHEN 0 THEN 100 + n % 9000 ELSE 0 END AS DECIMAL(18, 6)) AS balance_due,
                CAST(0 AS DECIMAL(18, 6)) AS tax_total,
                CAST(NULL AS TIMESTAMPTZ) AS paid_at, CAST(NULL AS TIMESTAMPTZ) AS deleted_at
            FROM range({invoices}) AS t(n)"""
        )
        # States k = 0..3, one run a day at 02:00 UTC: draft, open 3 days later, partially paid 15
        # days after that, then paid (or void, or open again) 15 days later.
        con.execute(
            """CREATE TABLE billing.invoice_history AS
            WITH states AS (
                SELECT i.*, k, CAST(i.issue_date AS TIMESTAMP) + INTERVAL 2 HOUR
                    + to_days(CAST([0, 3, 18, 33][k + 1] AS INTEGER)) AS starts
                FROM billing.invoices AS i, range(4) AS s(k)
            )
            SELECT provider, account, invoice_id,
                CASE k WHEN 0 THEN 'draft' WHEN 1 THEN 'open' WHEN 2 THEN 'partially_paid' ELSE status END AS status,
                CASE k WHEN 0 THEN NULL WHEN 1 THEN total WHEN 2 THEN total / 2 ELSE balance_due END AS balance_due,
                total, due_date, currency, FALSE AS deleted,
                CAST(starts AS TIMESTAMPTZ) AS valid_from,
                CASE WHEN k < 3 THEN CAST(starts AS TIMESTAMPTZ) + to_days(CAST([3, 15, 15][k + 1] AS INTEGER)) END
                    AS valid_to,
                strftime(starts, '%Y%m%dT%H%M%SZ') AS run_id
            FROM states"""
        )
        con.execute(
            f"""CREATE TABLE billing.pipeline_runs AS
            SELECT 'r' || d AS run_id, 'p' || a AS provider, 'account' || a AS account,
                CAST(DATE '{start}' + CAST(d AS INTEGER) AS TIMESTAMPTZ) + INTERVAL 2 HOUR AS started_at,
                'loaded' AS status
            FROM range(731) AS t(d), range(4) AS u(a)"""
        )
        # No fx_rates table here: the views convert nothing, as `refresh` creates them in such a warehouse.
        for name, sql in view_queries(has_deleted_at=True, has_rates=False).items():
            con.execute(f"CREATE VIEW billing.{name} AS {qualify(sql, lambda t: ['billing', t], 'duckdb')}")
        (rows,) = con.execute("SELECT count(*) FROM billing.invoice_history").fetchone() or (0,)
    return invoices, int(rows)


def views_at_scale(scale: Scale) -> tuple[list[list[str]], list[Target], list[str]]:
    rows: list[list[str]] = []
    with workdir("history-views-") as work:
        db = work / "history.duckdb"
        with Timer() as made:
            invoices, observations = write_history(db, scale.history_observations)
        check(observations == 4 * invoices, f"{observations} history rows for {invoices} invoices")
        seconds: dict[str, float] = {}
        for view, read in (
            ("receivables_month_end", "count(*), sum(outstanding), sum(documents)"),
            ("invoice_payments", "count(*), count(days_to_pay), sum(days_to_pay)"),
        ):
            times = []
            with duckdb.connect(str(db), read_only=True) as con:
                con.execute("SET TimeZone = 'UTC'")
                for _ in range(3):
                    with Timer() as timer:
                        result = con.execute(f"SELECT {read} FROM billing.{view}").fetchone()
                    times.append(timer.seconds)
            check(result is not None and result[0] > 0, f"{view} is empty")
            seconds[view] = statistics.median(times)
            rows.append(
                [
                    f"read {view} in full",
                    f"{observations:,} history rows of {invoices:,} invoices, 4 accounts, 25 months",
                    fmt_int(result[0] if result else 0) + " rows",
                    fmt_s(seconds[view]),
                ]
            )
    month_end = seconds["receivables_month_end"]
    targets = [
        Target(
            f"history: receivables_month_end over {observations:,} observations",
            f"≤ {VIEW_TARGET_SECONDS:.0f} s",
            fmt_s(month_end),
            month_end <= VIEW_TARGET_SECONDS,
        )
    ]
    notes = [
        f"Views: the history rows are generated directly in DuckDB ({fmt_s(made.seconds)}), with the `invoices` and "
        "`pipeline_runs` columns the views read; each view is read in full three times (median)."
    ]
    return rows, targets, notes


def run(scale: Scale) -> Section:
    rerun_rows, rerun_targets, rerun_notes = rerun_cost(scale)
    view_rows, view_targets, view_notes = views_at_scale(scale)
    rows = rerun_rows + [[r[0], r[1], "-", r[3], r[2]] for r in view_rows]
    return Section(
        TITLE,
        HEADERS,
        rows,
        [*rerun_notes, *view_notes],
        [*rerun_targets, *view_targets],
    )
