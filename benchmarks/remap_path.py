"""Remap (CPU): `billing-elt remap` over stored invoices, beside the load path measured in the same run.

The InvoiceXpress pages of `benchmarks.pages` are loaded into a DuckDB file by the load path
(`benchmarks.load_path.ours_resource`: decode, the driver's `RecordWriter`, Arrow, parquet, merge),
timed; then the command's own function `pipelines.remap.remap` runs twice on that warehouse, with
no API anywhere:

- nothing changed: every payload read back, mapped and compared, nothing written;
- every row changed: each stored invoice and line altered in the warehouse first, so remap
  rewrites every invoice and its lines (what a mapping fix touching every row costs).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt
import duckdb
from dlt.extract.source import DltSource

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
from benchmarks.load_path import API, ours_resource
from benchmarks.pages import generate
from sources.shared.model import INVOICE_ITEMS, INVOICES

NAME = "remap_bench"


def _figures(db: Path) -> tuple[int, int, Decimal, int]:
    invoices, total, altered = query(
        db, f"SELECT count(*), sum(total), count(*) FILTER (WHERE notes = '~') FROM billing.{INVOICES}"
    )[0]
    (lines,) = query(db, f"SELECT count(*) FROM billing.{INVOICE_ITEMS}")[0]
    return int(invoices), int(lines), Decimal(total), int(altered)


def _remap(work: Path) -> tuple[float, int, int]:
    """One `remap` of the benchmark's warehouse: (seconds, exit code, load packages written)."""
    from pipelines.remap import remap

    db = db_path(work, NAME)
    (before,) = query(db, "SELECT count(*) FROM billing._dlt_loads")[0]
    env = {
        "DESTINATION__DUCKDB__CREDENTIALS": str(db),
        "DESTINATION_TYPE": "duckdb",
        "DATASET_NAME": "billing",
        "PIPELINES_DIR": str(work / "pipelines"),
    }
    with environ(env), Timer() as timer:
        code = remap(pipeline_name=NAME)
    (after,) = query(db, "SELECT count(*) FROM billing._dlt_loads")[0]
    return timer.seconds, code, int(after) - int(before)


def run(scale: Scale) -> Section:
    pages = generate(scale.load_n, scale.load_lines)
    exp = pages.expected
    with workdir("remap-") as work:
        pipeline = pipeline_in(work, NAME)
        # A source of the provider's name, as a load writes it (its schema and state).
        source = DltSource(dlt.Schema(API.provider), API.provider, [ours_resource(pages.files, account="bench")])
        with Timer() as load:
            pipeline.run(source, loader_file_format="parquet")
        db = db_path(work, NAME)
        invoices, lines, total, _ = _figures(db)
        check((invoices, lines, total) == (exp.invoices, exp.lines, exp.total), "remap: the load is not complete")

        same_s, code, written = _remap(work)
        check(code == 0, f"remap (nothing changed) exited {code}")
        check(written == 0, f"remap (nothing changed) wrote {written} load package(s)")

        with duckdb.connect(str(db)) as con:
            con.execute(f"UPDATE billing.{INVOICES} SET notes = '~', total = total + 1")
            con.execute(f"UPDATE billing.{INVOICE_ITEMS} SET name = '~'")
        all_s, code, written = _remap(work)
        check(code == 0, f"remap (every row changed) exited {code}")
        check(written == 1, f"remap (every row changed) wrote {written} load packages, not one")
        invoices, lines, total, altered = _figures(db)
        (stray,) = query(db, f"SELECT count(*) FROM billing.{INVOICE_ITEMS} WHERE name = '~'")[0]
        check((invoices, lines, total) == (exp.invoices, exp.lines, exp.total), "remap did not restore every row")
        check(altered == 0 and stray == 0, f"remap left {altered} invoices and {stray} lines altered")

    rate: dict[str, Any] = {
        "load": exp.invoices / load.seconds,
        "same": exp.invoices / same_s,
        "all": exp.invoices / all_s,
    }
    rows = [
        [
            "load path (pages → RecordWriter → parquet, merge)",
            fmt_int(exp.invoices),
            fmt_s(load.seconds),
            fmt_int(rate["load"]),
            "1x",
        ],
        [
            "remap, nothing changed (read, map, compare; nothing written)",
            fmt_int(exp.invoices),
            fmt_s(same_s),
            fmt_int(rate["same"]),
            f"{fmt_x(rate['same'] / rate['load'])} the load path's rate",
        ],
        [
            "remap, every row changed (read, map, compare, rewrite all)",
            fmt_int(exp.invoices),
            fmt_s(all_s),
            fmt_int(rate["all"]),
            f"{fmt_x(rate['all'] / rate['load'])} the load path's rate",
        ],
    ]
    notes = [
        f"{exp.invoices:,} InvoiceXpress invoices with {exp.lines:,} lines stored in one account; remap runs "
        "through `pipelines.remap.remap` (the command's own function: run lock, state, views), with no API.",
        "Every row changed: every invoice's `notes` and `total` and every line's `name` altered in the warehouse "
        "first; remap maps every stored payload again into Arrow, compares it with the stored rows in an "
        "in-memory DuckDB join, keeps the changed rows on disk (parquet, a chunk at a time: memory stays "
        "bounded) and writes them from there with a merge, as a load does.",
        "Checked before reporting: the first remap wrote no load package; after the second, invoice and line "
        f"counts and sum(total) equal the generator's ({exp.total:,}) and no altered value is left.",
        "Target: remap at least as fast as the load path that stored the same invoices (merging them), "
        "both measured in the same run on the same machine.",
    ]
    targets = [
        Target(
            "remap, nothing changed, vs load path",
            "≥ 1x",
            fmt_x(rate["same"] / rate["load"]),
            rate["same"] >= rate["load"],
        ),
        Target(
            "remap, every row changed, vs load path",
            "≥ 1x",
            fmt_x(rate["all"] / rate["load"]),
            rate["all"] >= rate["load"],
        ),
    ]
    return Section(
        f"5. Remap (CPU): {exp.invoices:,} stored invoices mapped again, beside the load path",
        ["path", "invoices", "wall", "invoices/s", "comparison"],
        rows,
        notes,
        targets,
    )
