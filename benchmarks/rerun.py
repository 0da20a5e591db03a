"""Rerun cost: the same load twice, nothing changed upstream in between.

One small function per provider returns its two runs (`provider_runs` does the work: the
provider's real source, its config read by dlt from the sandbox's environment, run twice into one
warehouse); `RERUNS` lists them and `available()` keeps those whose `sandbox/<provider>` and
`sources/<provider>` both exist. To add a provider, write `<provider>_runs(scale)` and register it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Scale,
    Section,
    Target,
    Timer,
    check,
    db_path,
    fmt_int,
    fmt_s,
    pipeline_in,
    query,
    rows_written,
    workdir,
)
from benchmarks.serve import SandboxProcess
from pipelines.registry import discover
from sources.shared.model import CLIENTS, INVOICE_ITEMS, INVOICES

TABLES = (INVOICES, INVOICE_ITEMS, CLIENTS)


@dataclass
class RunFigures:
    """One run: wall time, requests the sandbox answered and rows handed to the warehouse."""

    label: str
    seconds: float
    requests: int
    rows_written: int
    invoices_in_table: int
    by_table: tuple[int, ...] = ()


@dataclass
class Rerun:
    provider: str
    setup: str
    runs: list[RunFigures]
    has_cursor: bool
    note: str = ""


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block: dlt reads a source's config from them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _check_tables(db: Path, provider: str, summary: dict[str, Any], label: str) -> int:
    """The provider's rows in the warehouse equal what its sandbox holds; returns the invoice count."""
    where = f"WHERE provider = '{provider}'"
    (invoices,) = query(db, f"SELECT count(*) FROM billing.{INVOICES} {where}")[0]
    (lines,) = query(db, f"SELECT count(*) FROM billing.{INVOICE_ITEMS} {where}")[0]
    totals = dict(query(db, f"SELECT currency, sum(total) FROM billing.{INVOICES} {where} GROUP BY 1"))
    check(invoices == summary["invoices"], f"{provider} {label}: {invoices} invoices, {summary['invoices']} upstream")
    check(lines == summary["lines"], f"{provider} {label}: {lines} lines, {summary['lines']} upstream")
    expected = {k: Decimal(str(v)) for k, v in summary["totals"].items()}
    check(
        {k: Decimal(v) for k, v in totals.items()} == expected,
        f"{provider} {label}: totals {totals} != upstream {expected}",
    )
    return int(invoices)


def provider_runs(name: str, scale: Scale, setup: str, has_cursor: bool, note: str, **options: Any) -> Rerun:
    """Run provider `name`'s real source twice against its sandbox (built with `options`), config
    read by dlt from the environment as in production; budgets off on both sides."""
    provider = discover()[name]
    with SandboxProcess(name, latency=scale.latency, **options) as sandbox, workdir("rerun-") as work:
        env = dict(sandbox.env, **{provider.env("requests_per_minute"): "0"})
        pipeline = pipeline_in(work, "rerun")
        runs = []
        for label in ("first run", "second run, nothing changed"):
            sandbox.clear()
            with _environ(env), Timer() as timer:
                pipeline.run(provider.source(), loader_file_format="parquet")
            requests = int(sandbox.stats()["requests"])
            invoices = _check_tables(db_path(work, "rerun"), name, sandbox.summary(), label)
            by_table = tuple(rows_written(pipeline, (t,)) for t in TABLES)
            runs.append(RunFigures(label, timer.seconds, requests, sum(by_table), invoices, by_table))
    return Rerun(name, f"{setup}, {scale.latency * 1000:.0f} ms latency, budget off", runs, has_cursor, note)


def invoicexpress_runs(scale: Scale) -> Rerun:
    clients = scale.rerun_clients
    return provider_runs(
        "invoicexpress",
        scale,
        f"{clients:,} clients × 90 documents",
        has_cursor=False,
        note="InvoiceXpress has no change filter or update cursor: a rerun re-reads and rewrites every "
        "document by design (the merge leaves the tables identical).",
        clients=clients,
        invoices_per_client=90,
        lines_per_invoice=[3, 7],
        requests_per_minute=None,
    )


def flowpayroll_runs(scale: Scale) -> Rerun:
    clients = scale.rerun_clients
    return provider_runs(
        "flowpayroll",
        scale,
        f"{clients:,} clients × 20 invoices",
        has_cursor=True,
        note="Flow Payroll: every page is read again; the update cursors keep unchanged rows out of the load.",
        clients=clients,
        invoices_per_client=20,
    )


def kitchen_runs(scale: Scale) -> Rerun:
    invoices = scale.rerun_clients * 20
    return provider_runs(
        "kitchen",
        scale,
        f"{scale.rerun_clients // 2:,} clients, {invoices:,} invoices",
        has_cursor=True,
        note="Kitchen: every page is read again; the update cursor keeps unchanged invoices out of the load.",
        clients=max(1, scale.rerun_clients // 2),
        invoices=invoices,
    )


def fohlio_runs(scale: Scale) -> Rerun:
    invoices = scale.rerun_clients * 20
    return provider_runs(
        "fohlio",
        scale,
        f"{scale.rerun_clients // 2:,} clients, {invoices:,} invoices",
        has_cursor=True,
        note="Fohlio: the second run asks only for what changed since the last mark (`updated_since`).",
        clients=max(1, scale.rerun_clients // 2),
        invoices=invoices,
    )


RERUNS: dict[str, Callable[[Scale], Rerun]] = {
    "invoicexpress": invoicexpress_runs,
    "flowpayroll": flowpayroll_runs,
    "kitchen": kitchen_runs,
    "fohlio": fohlio_runs,
}


def available() -> dict[str, Callable[[Scale], Rerun]]:
    """The registered reruns whose provider has both a sandbox and a source on this branch."""
    return {
        name: fn
        for name, fn in RERUNS.items()
        if importlib.util.find_spec(f"sandbox.{name}") and importlib.util.find_spec(f"sources.{name}")
    }


def run(scale: Scale) -> Section:
    rows, targets, notes = [], [], []
    for name, fn in available().items():
        result = fn(scale)
        second = result.runs[-1]
        for r in result.runs:
            rows.append(
                [
                    name,
                    result.setup,
                    r.label,
                    fmt_s(r.seconds),
                    fmt_int(r.requests),
                    f"{fmt_int(r.rows_written)} ({' / '.join(fmt_int(n) for n in r.by_table)})",
                    fmt_int(r.invoices_in_table),
                ]
            )
        if result.note:
            notes.append(result.note)
        if result.has_cursor:
            targets.append(
                Target(f"{name} rerun: rows rewritten", "0", fmt_int(second.rows_written), second.rows_written == 0)
            )
    notes.append(
        "Rows written = rows of invoices, invoice_items and clients in the run's load package "
        "(dlt's normalize row counts); requests = what the sandbox answered. Table contents are "
        "checked after each run (counts and sum(total) equal the sandbox's)."
    )
    return Section(
        "3. Rerun cost: the same load twice, nothing changed upstream",
        [
            "provider",
            "setup",
            "run",
            "wall",
            "requests",
            "rows written (invoices / lines / clients)",
            "invoices in table",
        ],
        rows,
        notes,
        targets,
    )
