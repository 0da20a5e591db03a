"""Run one SQL statement against the DuckDB warehouse and print the result.

    python -m pipelines.query "SELECT provider, count(*) FROM billing.invoices GROUP BY 1"

The file (`destination.duckdb.credentials`, default `billing.duckdb`) is attached read-only
as `warehouse`, so `billing.invoices` names the dataset without clashing with the file's own
catalog, which DuckDB also calls `billing`.
"""

from __future__ import annotations

import argparse
import sys

import duckdb

from pipelines.demo import EXAMPLE_QUERY
from pipelines.warehouse import duckdb_file, read_only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sql", nargs="?", default=EXAMPLE_QUERY, help="the statement (default: an example)")
    parser.add_argument("--db", default=None, help="the DuckDB file (default: destination.duckdb.credentials)")
    args = parser.parse_args(argv)
    db = args.db or duckdb_file()
    try:
        with read_only(db) as con:
            con.sql(args.sql).show(max_width=200)
    except duckdb.Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
