"""What the Postgres tests share: the four sandboxes served at once, and canonical rows read
back from either warehouse in one comparable form."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from typing import Any

from sandbox.framework import App as SandboxApp
from sandbox.server import available
from sources.shared.model import CLIENTS, INVOICE_ITEMS, INVOICES, PRIMARY_KEYS
from tests.postgres.cluster import Database
from tests.support import Workspace, serve

TABLES = (INVOICES, INVOICE_ITEMS, CLIENTS)
DATASET = "billing"


@contextmanager
def every_sandbox(seed: int = 42) -> Iterator[tuple[dict[str, SandboxApp], dict[str, str]]]:
    """All four providers' sandboxes on loopback, and the environment pointing the CLI at them."""
    apps = {name: create(seed=seed) for name, create in available().items()}
    with ExitStack() as stack:
        env: dict[str, str] = {}
        for app in apps.values():
            env.update(app.pipeline_env(stack.enter_context(serve(app)).url))
        yield apps, env


def comparable(value: Any, column: str) -> Any:
    """One value in a form both warehouses agree on exactly: decimals as their exact text,
    timestamps in UTC, `raw` parsed (numbers as decimals, so none is rounded on the way)."""
    if column in ("raw", "_mapping_inputs") and value is not None:
        return json.loads(value if isinstance(value, str) else json.dumps(value), parse_float=Decimal)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return value


def pg_columns(db: Database, table: str) -> list[str]:
    return [
        r[0]
        for r in db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position",
            DATASET,
            table,
        )
    ]


def duckdb_columns(ws: Workspace, table: str) -> list[str]:
    return [
        r[0]
        for r in ws.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            DATASET,
            table,
        )
    ]


def _rows(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [{c: comparable(v, c) for c, v in zip(columns, row, strict=True)} for row in rows]


def pg_rows(db: Database, table: str, where: str = "") -> list[dict[str, Any]]:
    """Every column of every row of `table` (in key order); `raw` read as its JSON text."""
    columns = pg_columns(db, table)
    select = ", ".join(f'"{c}"::text' if c in ("raw", "_mapping_inputs") else f'"{c}"' for c in columns)
    order = ", ".join(PRIMARY_KEYS[table])
    return _rows(columns, db.query(f"SELECT {select} FROM {DATASET}.{table} {where} ORDER BY {order}"))


def duckdb_rows(ws: Workspace, table: str) -> list[dict[str, Any]]:
    columns = duckdb_columns(ws, table)
    select = ", ".join(f'"{c}"' for c in columns)
    order = ", ".join(PRIMARY_KEYS[table])
    return _rows(columns, ws.query(f"SELECT {select} FROM {DATASET}.{table} ORDER BY {order}"))


def pg_snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    return {table: pg_rows(db, table) for table in TABLES}


def pg_row_versions(db: Database) -> dict[str, set[tuple[Any, ...]]]:
    """Every row's key with its `xmin`, the transaction that last wrote it: a row rewritten
    with identical values still gets a new one."""
    return {
        table: set(db.query(f"SELECT {', '.join(PRIMARY_KEYS[table])}, xmin::text FROM {DATASET}.{table}"))
        for table in TABLES
    }


def counts_by_provider(db: Database) -> dict[str, tuple[int, int, int]]:
    """(invoices, lines, clients) per provider."""
    found: dict[str, list[int]] = {}
    for i, table in enumerate(TABLES):
        for provider, count in db.query(f"SELECT provider, count(*) FROM {DATASET}.{table} GROUP BY 1"):
            found.setdefault(provider, [0, 0, 0])[i] = count
    return {p: (c[0], c[1], c[2]) for p, c in sorted(found.items())}


def expected_counts(app: SandboxApp) -> tuple[int, int, int]:
    s = app.summary()
    return s["invoices"], s["lines"], s["clients"]
