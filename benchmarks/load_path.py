"""Load path (CPU): InvoiceXpress pages on disk to merged tables in DuckDB, no HTTP.

- ours: every page decoded with `values.loads`, every page mapped and written by the shared
  driver's `RecordWriter` with InvoiceXpress's declared mappers (`map_invoice` + `TableWriter`),
  loaded with `loader_file_format="parquet"` and the production merge hints;
- naive dlt: the same pages' invoices as plain dicts (`json.loads`) yielded to a `@dlt.resource`
  with default settings: dlt infers the schema and nests the lines into a child table;
- floor: DuckDB's own `read_json` of the same page files into two tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt
import duckdb

from benchmarks.common import (
    Scale,
    Section,
    Target,
    Timer,
    check,
    db_path,
    declaration,
    fmt_int,
    fmt_s,
    fmt_x,
    pipeline_in,
    plain_pipeline_in,
    provider,
    query,
    step_seconds,
    workdir,
)
from benchmarks.pages import PROVIDER, PageSet, generate
from sources.shared.declaration import Api, Context, dig
from sources.shared.driver import RecordWriter
from sources.shared.model import INVOICE_ITEMS, INVOICES, TableWriter
from sources.shared.stats import RunStats
from sources.shared.values import loads

ACCOUNT = "bench"
# The provider is the one whose pages `benchmarks.pages` writes (InvoiceXpress: its sandbox's
# generator streams a million invoices without holding them); its declaration gives the rest.
_API = declaration(provider(PROVIDER))
assert _API is not None, f"{PROVIDER} declares no Api"
API: Api = _API


def ours_resource(files: list[Path], account: str = ACCOUNT) -> Any:
    """The source's decode, map and write path over page files instead of HTTP responses."""

    @dlt.resource(name=f"{API.provider}_billing")
    def billing() -> Iterator[Any]:
        records = RecordWriter(API, TableWriter(), RunStats(API.provider, account))
        context = Context(API.provider, account)
        for path in files:
            yield from records.write(dig(loads(path.read_bytes()), API.invoices.records), context)
        yield from records.flush()

    return billing


def run_ours(pages: PageSet, work: Path) -> dict[str, Any]:
    pipeline = pipeline_in(work, "ours")
    with Timer() as timer:
        pipeline.run(ours_resource(pages.files), loader_file_format="parquet")
    db = db_path(work, "ours")
    invoices, total, raws = query(db, f"SELECT count(*), sum(total), count(raw) FROM billing.{INVOICES}")[0]
    (lines,) = query(db, f"SELECT count(*) FROM billing.{INVOICE_ITEMS}")[0]
    exp = pages.expected
    check(invoices == exp.invoices, f"ours: {invoices} invoices loaded, {exp.invoices} generated")
    check(lines == exp.lines, f"ours: {lines} lines loaded, {exp.lines} generated")
    check(Decimal(total) == exp.total, f"ours: sum(total) {total} != generated {exp.total}")
    check(raws == exp.invoices, "ours: raw missing on some invoices")
    return {"seconds": timer.seconds, "invoices": invoices, "lines": lines, "steps": step_seconds(pipeline)}


def stage_costs(pages: PageSet, n: int = 10_000) -> dict[str, float]:
    """Microseconds per invoice of each stage of our extract, outside dlt, on the first `n` invoices:
    where the time goes."""
    files, held = pages.head(n)
    raw = [path.read_bytes() for path in files]
    with Timer() as decode:
        documents = [d for body in raw for d in dig(loads(body), API.invoices.records)]
    context = Context(API.provider, ACCOUNT)
    with Timer() as mapping:
        mapped = [API.mapping.invoice(d, context) for d in documents]
    writer = TableWriter()
    with Timer() as arrow:
        for m in mapped:
            for _ in writer.add_invoice(m):
                pass
        for _ in writer.flush():
            pass
    return {name: t.seconds / held * 1e6 for name, t in (("decode", decode), ("map", mapping), ("arrow", arrow))}


def run_naive(pages: PageSet, n: int, work: Path) -> dict[str, Any]:
    files, held = pages.head(n)
    expected_lines = 0
    for path in files:  # outside the timing: only to check the counts afterwards
        expected_lines += sum(len(i["items"]) for i in json.loads(path.read_bytes())["invoices"])

    @dlt.resource(name="invoices")
    def invoices() -> Iterator[Any]:
        for path in files:
            yield json.loads(path.read_bytes())["invoices"]

    pipeline = plain_pipeline_in(work, "naive")
    with Timer() as timer:
        pipeline.run(invoices)
    db = db_path(work, "naive")
    (count,) = query(db, "SELECT count(*) FROM billing.invoices")[0]
    (lines,) = query(db, "SELECT count(*) FROM billing.invoices__items")[0]
    check(count == held, f"naive: {count} invoices loaded, {held} yielded")
    check(lines == expected_lines, f"naive: {lines} lines loaded, {expected_lines} yielded")
    return {"seconds": timer.seconds, "invoices": count, "lines": lines, "steps": step_seconds(pipeline)}


def run_floor(pages: PageSet, work: Path) -> dict[str, Any]:
    db = work / "floor.duckdb"
    with Timer() as timer, duckdb.connect(str(db)) as con:
        con.execute(f"CREATE TEMP TABLE docs AS SELECT unnest(invoices) AS inv FROM read_json('{pages.glob}')")
        con.execute("CREATE TABLE invoices AS SELECT * EXCLUDE (items) FROM (SELECT unnest(inv) FROM docs)")
        con.execute(
            "CREATE TABLE invoice_items AS SELECT invoice_id, unnest(item) FROM "
            "(SELECT inv.id AS invoice_id, unnest(inv.items) AS item FROM docs)"
        )
    invoices, total = query(
        db, "SELECT count(*), sum(CAST(json_extract_string(total, '$') AS DECIMAL(18, 6))) FROM invoices"
    )[0]
    (lines,) = query(db, "SELECT count(*) FROM invoice_items")[0]
    exp = pages.expected
    check(invoices == exp.invoices, f"read_json: {invoices} invoices, {exp.invoices} generated")
    check(lines == exp.lines, f"read_json: {lines} lines, {exp.lines} generated")
    check(Decimal(total) == exp.total, f"read_json: sum(total) {total} != generated {exp.total}")
    return {"seconds": timer.seconds, "invoices": invoices, "lines": lines}


def run(scale: Scale) -> Section:
    with Timer() as gen:
        pages = generate(scale.load_n, scale.load_lines)
    with workdir("load-") as work:
        ours = run_ours(pages, work)
        naive = run_naive(pages, scale.naive_n, work)
        floor = run_floor(pages, work)
    costs = stage_costs(pages)
    rate = {name: r["invoices"] / r["seconds"] for name, r in (("ours", ours), ("naive", naive), ("floor", floor))}
    vs_naive = rate["ours"] / rate["naive"]
    vs_floor = rate["floor"] / rate["ours"]

    def steps(r: dict[str, Any]) -> str:
        s = r.get("steps") or {}
        return " / ".join(f"{s.get(k, 0):.1f}" for k in ("extract", "normalize", "load")) if s else "-"

    rows = [
        [
            "ours (values.loads → map_invoice → TableWriter → parquet, merge)",
            fmt_int(ours["invoices"]),
            fmt_int(ours["lines"]),
            fmt_s(ours["seconds"]),
            steps(ours),
            fmt_int(rate["ours"]),
            "1x",
        ],
        [
            "naive dlt (json.loads dicts, default @dlt.resource, lines nested)",
            fmt_int(naive["invoices"]),
            fmt_int(naive["lines"]),
            fmt_s(naive["seconds"]),
            steps(naive),
            fmt_int(rate["naive"]),
            f"ours is {fmt_x(vs_naive)} faster",
        ],
        [
            "floor (DuckDB read_json → 2 tables)",
            fmt_int(floor["invoices"]),
            fmt_int(floor["lines"]),
            fmt_s(floor["seconds"]),
            "-",
            fmt_int(rate["floor"]),
            f"ours is {fmt_x(vs_floor)} slower",
        ],
    ]
    notes = [
        f"{len(pages.files):,} pages of 30 invoices ({pages.expected.lines / pages.expected.invoices:.1f} lines "
        f"per invoice on average, {sum(f.stat().st_size for f in pages.files) / 1e6:,.0f} MB of JSON), read "
        "from disk (warm page cache); generation is not timed"
        + (f" (took {gen.seconds:.0f} s)." if gen.seconds > 1 else " (reused from .bench/)."),
        "Where our time goes, per invoice, measured outside dlt on the first 10,000 invoices: decode "
        f"(values.loads) {costs['decode']:.0f} µs, map (map_invoice, raw JSON of invoice and lines included) "
        f"{costs['map']:.0f} µs, Arrow batches (TableWriter) {costs['arrow']:.0f} µs; the rest of the extract "
        "step is dlt writing parquet, and the load step is DuckDB's merge from the staging dataset.",
        f"The naive baseline loads the first {naive['invoices']:,} invoices only (it is slow); the comparison "
        "is of rates per second.",
        "Checked before reporting: invoice and line counts of every path equal the generator's; sum(total) of "
        "ours and of read_json equals the generator's exact sum "
        f"({pages.expected.total:,}); every invoice of ours keeps its raw JSON.",
    ]
    targets = [
        Target("load path rate", "≥ 20,000 invoices/s", f"{rate['ours']:,.0f} invoices/s", rate["ours"] >= 20_000),
        Target("load path vs naive dlt", "≥ 20x", fmt_x(vs_naive), vs_naive >= 20),
        Target("load path vs DuckDB read_json", "within 5x", fmt_x(vs_floor), vs_floor <= 5),
    ]
    return Section(
        f"1. Load path (CPU): {pages.expected.invoices:,} invoices from JSON pages to DuckDB",
        ["path", "invoices", "lines", "wall", "extract / normalize / load (s)", "invoices/s", "comparison"],
        rows,
        notes,
        targets,
    )
