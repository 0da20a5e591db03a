"""Run one SQL statement against the warehouse and print the result, as a table or as CSV.

    python -m pipelines.query "SELECT provider, count(*) FROM billing.invoices GROUP BY 1"
    python -m pipelines.query --limit 500 "SELECT * FROM billing.receivables_aging"
    python -m pipelines.query --csv --output aging.csv "SELECT * FROM billing.receivables_aging"

It reads the configured destination: the DuckDB file (`destination.duckdb.credentials`,
default `warehouse.duckdb`, opened read-only), or any other destination (`destination_type`,
e.g. Postgres) through dlt's SQL client with the pipeline's credentials. `--db FILE` reads a
DuckDB file instead. The statement is sent as written, in the destination's own SQL.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, TextIO

from pipelines.demo import EXAMPLE_QUERY
from pipelines.warehouse import reader

DEFAULT_LIMIT = 20


def _text(value: Any) -> str:
    return "NULL" if value is None else str(value)


def print_table(columns: list[str], rows: list[tuple[Any, ...]], more: bool, out: TextIO) -> None:
    cells = [[_text(v) for v in row] for row in rows]
    widths = [min(max([len(c)] + [len(r[i]) for r in cells]), 60) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return " | ".join(
            (v if len(v) <= w else v[: w - 1] + "…").ljust(w) for v, w in zip(values, widths, strict=True)
        )

    print(line(columns).rstrip(), file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for row in cells:
        print(line(row).rstrip(), file=out)
    shown = f"{len(rows):,} row{'s' if len(rows) != 1 else ''}"
    print(f"({shown}{', more not shown: --limit N or --limit 0 for all' if more else ''})", file=out)


def write_csv(columns: list[str], rows: list[tuple[Any, ...]], out: TextIO) -> None:
    """RFC 4180 CSV with a header; NULL is an empty field."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if v is None else v for v in row] for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sql", nargs="?", default=EXAMPLE_QUERY, help="the statement (default: an example)")
    parser.add_argument("--db", default=None, help="a DuckDB file (default: the configured destination)")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help=f"rows to show (default {DEFAULT_LIMIT} as a table, all as CSV; 0 = all)",
    )
    parser.add_argument("--csv", action="store_true", help="write CSV instead of a table")
    parser.add_argument("--output", "-o", default=None, help="write to FILE instead of stdout")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 0:
        parser.error("--limit must be 0 (all) or more")
    limit = args.limit if args.limit is not None else (None if args.csv else DEFAULT_LIMIT)
    limit = None if limit == 0 else limit
    try:
        with reader(args.db) as r:
            columns, rows, more = r.fetch(args.sql, limit)
    except Exception as exc:
        from sources.shared.redact import redact

        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 1
    out: TextIO
    with open(args.output, "w", newline="", encoding="utf-8") if args.output else _stdout() as out:
        if args.csv:
            write_csv(columns, rows, out)
        else:
            print_table(columns, rows, more, out)
    if args.output:
        print(f"{len(rows):,} row(s) written to {Path(args.output)}", file=sys.stderr)
    return 0


class _stdout:
    """sys.stdout as a context manager that does not close it."""

    def __enter__(self) -> TextIO:
        return sys.stdout

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
