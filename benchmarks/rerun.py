"""Rerun cost: the same load twice, nothing changed upstream in between.

Every provider with a source and a sandbox is run (`available()`): its real source, its config read
by dlt from the sandbox's environment, twice into one warehouse. The sandbox package says how big
an account to serve (`bench_options(clients)` in `sandbox/<provider>/__init__.py`); what a rerun is
expected to do comes from the provider's declaration (its invoices listing's cursor policy).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

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
    pipeline_in,
    query,
    rows_written,
    workdir,
)
from benchmarks.serve import SandboxProcess
from pipelines.registry import discover
from sandbox.server import available as sandboxes
from sources.shared.declaration import Api
from sources.shared.model import CLIENTS, INVOICE_ITEMS, INVOICES
from sources.shared.provider import Provider

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


def _note(provider: Provider, api: Api) -> tuple[bool, str]:
    """Whether the invoices listing has a cursor, and what a rerun does, from the declaration."""
    cursor = api.invoices.cursor
    if cursor.incremental:
        return (
            True,
            f"{provider.title}: the second run asks only for what changed since the last mark "
            f"(`{getattr(cursor, 'param', '')}`).",
        )
    if cursor.tracker({}) is not None:
        return (
            True,
            f"{provider.title}: every page is read again; the update cursor keeps unchanged rows out of the load.",
        )
    return False, (
        f"{provider.title} has no change filter or update cursor: a rerun re-reads and rewrites every "
        "document by design (the merge leaves the tables identical)."
    )


def provider_runs(provider: Provider, scale: Scale, options: dict[str, Any]) -> Rerun:
    """Run the provider's real source twice against its sandbox (built with `options`), config
    read by dlt from the environment as in production; budgets off on both sides."""
    name = provider.name
    has_cursor, note = _note(provider, provider.api)
    with SandboxProcess(name, latency=scale.latency, **options) as sandbox, workdir("rerun-") as work:
        env = dict(sandbox.env, **{provider.env("requests_per_minute"): "0"})
        pipeline = pipeline_in(work, "rerun")
        runs = []
        for label in ("first run", "second run, nothing changed"):
            sandbox.clear()
            with environ(env), Timer() as timer:
                pipeline.run(provider.source(), loader_file_format="parquet")
            requests = int(sandbox.stats()["requests"])
            summary = sandbox.summary()
            invoices = _check_tables(db_path(work, "rerun"), name, summary, label)
            by_table = tuple(rows_written(pipeline, (t,)) for t in TABLES)
            runs.append(RunFigures(label, timer.seconds, requests, sum(by_table), invoices, by_table))
    setup = f"{summary['clients']:,} clients, {summary['invoices']:,} invoices"
    return Rerun(name, f"{setup}, {scale.latency * 1000:.0f} ms latency, budget off", runs, has_cursor, note)


def available() -> dict[str, Callable[[Scale], Rerun]]:
    """A rerun for every provider that has a source (`pipelines.registry.discover()`) and a sandbox
    (`sandbox.server.available()`) that declares its benchmark sizing, `bench_options(clients)`."""
    providers = discover()
    found: dict[str, Callable[[Scale], Rerun]] = {}
    for name, create_app in sandboxes().items():
        sizing = getattr(importlib.import_module(create_app.__module__), "bench_options", None)
        if name in providers and callable(sizing):
            provider = providers[name]
            found[name] = partial(_rerun, provider, sizing)
    return found


def _rerun(provider: Provider, sizing: Callable[[int], dict[str, Any]], scale: Scale) -> Rerun:
    return provider_runs(provider, scale, sizing(scale.rerun_clients))


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
