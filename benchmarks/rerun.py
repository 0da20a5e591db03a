"""Rerun cost: the same load twice, nothing changed upstream in between.

One small function per provider returns its two runs; `RERUNS` lists them and `available()`
keeps those whose `sandbox/<provider>` and `sources/<provider>` both exist. To add a provider,
write `<provider>_runs(scale)` on the model of `invoicexpress_runs` and register it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import dlt

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


@dataclass
class Rerun:
    provider: str
    setup: str
    runs: list[RunFigures]
    has_cursor: bool
    note: str = ""


def _run(pipeline: dlt.Pipeline, sandbox: SandboxProcess, source: object, label: str, db: Path) -> RunFigures:
    """Run `source` once; count requests from the sandbox's log and rows from dlt's normalize step."""
    sandbox.clear()
    with Timer() as timer:
        pipeline.run(source, loader_file_format="parquet")
    requests = int(sandbox.stats()["requests"])
    (invoices,) = query(db, f"SELECT count(*) FROM billing.{INVOICES}")[0]
    return RunFigures(label, timer.seconds, requests, rows_written(pipeline, TABLES), invoices)


def invoicexpress_runs(scale: Scale) -> Rerun:
    """InvoiceXpress has no update cursor: every run re-reads every client and rewrites (merges)
    every document with identical values, by design."""
    from sources.invoicexpress import invoicexpress

    clients, per_client = scale.rerun_clients, 90
    with (
        SandboxProcess(
            "invoicexpress",
            latency=scale.latency,
            clients=clients,
            invoices_per_client=per_client,
            lines_per_invoice=[3, 7],
            requests_per_minute=None,
        ) as sandbox,
        workdir("rerun-") as work,
    ):
        pipeline = pipeline_in(work, "rerun")
        runs = []
        for label in ("first run", "second run, nothing changed"):
            source = invoicexpress(
                account_name=sandbox.env["SOURCES__INVOICEXPRESS__ACCOUNT_NAME"],
                api_key=sandbox.env["SOURCES__INVOICEXPRESS__API_KEY"],
                base_url=sandbox.url,
                requests_per_minute=0,
            )
            runs.append(_run(pipeline, sandbox, source, label, db_path(work, "rerun")))
            served = sandbox.stats()
            invoices, total = query(db_path(work, "rerun"), f"SELECT count(*), sum(total) FROM billing.{INVOICES}")[0]
            check(
                invoices == clients * per_client == served["invoices"],
                f"rerun: {invoices} invoices in the table after the {label}, {clients * per_client} expected",
            )
            check(Decimal(total) == Decimal(served["total"]), f"rerun: sum(total) {total} != {served['total']}")
            (lines,) = query(db_path(work, "rerun"), f"SELECT count(*) FROM billing.{INVOICE_ITEMS}")[0]
            check(lines == served["lines"], f"rerun: {lines} lines after the {label}, {served['lines']} served")
    return Rerun(
        "invoicexpress",
        f"{clients:,} clients × {per_client} documents, {scale.latency * 1000:.0f} ms latency, budget off",
        runs,
        has_cursor=False,
        note="InvoiceXpress has no change filter or update cursor: a rerun re-reads and rewrites every "
        "document by design (merge leaves the tables identical).",
    )


RERUNS: dict[str, Callable[[Scale], Rerun]] = {
    "invoicexpress": invoicexpress_runs,
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
                    fmt_int(r.rows_written),
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
        ["provider", "setup", "run", "wall", "requests", "rows written", "invoices in table"],
        rows,
        notes,
        targets,
    )
