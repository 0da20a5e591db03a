"""Postgres load: the load path's invoices (benchmarks/load_path.py: the same page files, the same
decode, map and write path) loaded into Postgres and into DuckDB, one after the other in the same
run, each with the file format the pipeline chooses for it (`pipelines.warehouse.loader_file_format`).

Postgres is a throwaway cluster started for the run (`benchmarks.postgres_cluster`); without the
server binaries or the `postgres` extra the measurement is skipped, and the section says why.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt

from benchmarks.common import (
    Scale,
    Section,
    Timer,
    check,
    fmt_int,
    fmt_s,
    fmt_x,
    step_seconds,
    workdir,
)
from benchmarks.load_path import ours_resource, run_ours
from benchmarks.pages import PageSet, generate
from benchmarks.postgres_cluster import Cluster, throwaway_cluster, unavailable
from pipelines.warehouse import billing_postgres, loader_file_format
from sources.shared.model import INVOICE_ITEMS, INVOICES

TITLE = "6. Postgres load"
DATABASE = "bench"


def skipped(reason: str) -> Section:
    """The section of a measurement that could not run: its title says why."""
    return Section(f"{TITLE}: skipped, {reason}", [], [])


def run_postgres(pages: PageSet, work: Path, cluster: Cluster) -> dict[str, Any]:
    """The load path's resource into an empty Postgres database with the product's destination."""
    cluster.create_database(DATABASE)
    destination = billing_postgres(credentials=cluster.url(DATABASE), destination_name="postgres")
    pipeline = dlt.pipeline(
        pipeline_name="pg",
        pipelines_dir=str(work / "pipelines"),
        destination=destination,
        dataset_name="billing",
    )
    file_format = loader_file_format(destination)
    with Timer() as timer:
        pipeline.run(ours_resource(pages.files), loader_file_format=file_format)
    with contextlib.closing(cluster.connect(DATABASE)) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), sum(total), count(raw) FROM billing.{INVOICES}")
        invoices, total, raws = cursor.fetchone()
        cursor.execute(f"SELECT count(*) FROM billing.{INVOICE_ITEMS}")
        (lines,) = cursor.fetchone()
    exp = pages.expected
    check(invoices == exp.invoices, f"postgres: {invoices} invoices loaded, {exp.invoices} generated")
    check(lines == exp.lines, f"postgres: {lines} lines loaded, {exp.lines} generated")
    check(Decimal(total) == exp.total, f"postgres: sum(total) {total} != generated {exp.total}")
    check(raws == exp.invoices, "postgres: raw missing on some invoices")
    return {
        "seconds": timer.seconds,
        "invoices": invoices,
        "lines": lines,
        "steps": step_seconds(pipeline),
        "format": file_format,
    }


def run(scale: Scale) -> Section:
    reason = unavailable()
    if reason is not None:
        return skipped(reason)
    pages = generate(scale.load_n, scale.load_lines)
    with workdir("postgres-") as work, throwaway_cluster() as cluster:
        duck = run_ours(pages, work) | {"format": loader_file_format("duckdb")}
        pg = run_postgres(pages, work, cluster)
    rate = {name: r["invoices"] / r["seconds"] for name, r in (("duckdb", duck), ("postgres", pg))}

    def steps(r: dict[str, Any]) -> str:
        s = r.get("steps") or {}
        return " / ".join(f"{s.get(k, 0):.1f}" for k in ("extract", "normalize", "load"))

    slower = rate["duckdb"] / rate["postgres"]
    comparison = f"Postgres is {fmt_x(slower)} slower" if slower >= 1 else f"Postgres is {fmt_x(1 / slower)} faster"
    rows = [
        [
            name,
            r["format"],
            fmt_int(r["invoices"]),
            fmt_int(r["lines"]),
            fmt_s(r["seconds"]),
            steps(r),
            fmt_int(rate[key]),
            "1x" if key == "duckdb" else comparison,
        ]
        for name, key, r in (("DuckDB (file)", "duckdb", duck), ("Postgres (throwaway cluster)", "postgres", pg))
    ]
    notes = [
        f"The load path's {pages.expected.invoices:,} invoices ({len(pages.files):,} pages of 30, read from disk) "
        "through the same decode, map and write path (benchmarks/load_path.py, 'ours') into an empty warehouse "
        "each, with the product's destinations and merge hints; DuckDB first, then Postgres, in the same run.",
        "File format: what the pipeline writes for each destination (`pipelines.warehouse.loader_file_format`): "
        "parquet for DuckDB; for Postgres without an ADBC driver, INSERT statements (exact values).",
        "Postgres is a throwaway PostgreSQL cluster on loopback started for the run, with fsync, synchronous "
        "commit and full-page writes off: a server with durable commits loads slower. Its server processes "
        "share the machine's cores with the pipeline.",
        "Checked before reporting: invoice and line counts in both warehouses equal the generator's, sum(total) "
        f"equals its exact sum ({pages.expected.total:,}), and every invoice keeps its raw JSON.",
    ]
    return Section(
        f"{TITLE}: {pages.expected.invoices:,} invoices into Postgres and DuckDB",
        [
            "warehouse",
            "file format",
            "invoices",
            "lines",
            "wall",
            "extract / normalize / load (s)",
            "invoices/s",
            "comparison",
        ],
        rows,
        notes,
    )
