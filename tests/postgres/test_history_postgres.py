"""The invoice history and its views on Postgres: the same runs into DuckDB and into Postgres,
dated alike, keep the same states and give the same figures; SQL on Postgres computes the same
state versions as the load's Arrow code."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sandbox import fohlio, kitchen
from sources.shared.history import SCHEMA, TRACKED, state_version_sql, state_versions
from tests.history.conftest import Clock
from tests.history.reference import expected_history, rows_of, snapshot
from tests.postgres.cluster import Database
from tests.support import Workspace, serve

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

Query = Callable[[str], list[tuple[Any, ...]]]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, dt.datetime.now(dt.UTC))


def test_state_versions_in_postgres_sql_are_the_loads(pg_database: Database) -> None:
    rng = random.Random(7)
    rows = []
    for n in range(300):
        amount = Decimal(rng.randrange(-(10**18) + 1, 10**18)).scaleb(-6)
        rows.append(
            {
                "provider": rng.choice(["kitchen", "fohlio"]),
                "account": rng.choice(["acme", "é-ü", "a b"]),
                "invoice_id": f"in_{n}",
                "status": rng.choice([None, "open", "paid"]),
                "balance_due": rng.choice([None, amount, Decimal(0), Decimal("0.000001")]),
                "total": rng.choice([None, -amount, Decimal("999999999999.999999")]),
                "due_date": rng.choice([None, dt.date(1900, 1, 1), dt.date(1969, 12, 31), dt.date(2100, 2, 28)]),
                "currency": rng.choice([None, "EUR", "JPY"]),
                "deleted": rng.random() < 0.5,
            }
        )
    columns = ("provider", "account", "invoice_id", *TRACKED, "deleted")
    table = pa.Table.from_pylist(rows, schema=pa.schema([SCHEMA.field(c) for c in columns]))
    arrow = [state_versions(table.slice(i, 1), deleted=bool(r["deleted"])).to_pylist()[0] for i, r in enumerate(rows)]
    with contextlib.closing(pg_database.cluster.connect(pg_database.name)) as connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE h (n integer, provider text, account text, invoice_id text, status text, "
            "balance_due numeric(18, 6), total numeric(18, 6), due_date date, currency text, deleted boolean)"
        )
        for n, r in enumerate(rows):
            cursor.execute(
                "INSERT INTO h VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", (n, *(r[c] for c in columns))
            )
        cursor.execute(f"SELECT {state_version_sql('h', 'h.deleted')} FROM h ORDER BY n")
        in_sql = [r[0] for r in cursor.fetchall()]
    assert in_sql == arrow


def test_the_same_runs_keep_the_same_history_and_views_on_postgres_and_duckdb(
    tmp_path: Path, pg_database: Database, clock: Clock
) -> None:
    to_duckdb, to_postgres = Workspace(tmp_path / "duckdb"), Workspace(tmp_path / "postgres")
    for ws in (to_duckdb, to_postgres):
        ws.path.mkdir()
    queries: dict[str, Query] = {"duckdb": to_duckdb.query, "postgres": lambda sql: pg_database.query(sql)}
    runs: dict[str, list[Any]] = {"duckdb": [], "postgres": []}
    clock.days_ago(70)
    foh = fohlio.create_app(seed=11, clients=4, invoices=24, projects=5)
    kit = kitchen.create_app(seed=5, clients=4, invoices=30)
    with serve(foh) as f_server, serve(kit) as k_server:
        env = {
            **foh.pipeline_env(f_server.url),
            **kit.pipeline_env(k_server.url),
            "SOURCES__FOHLIO__RECONCILE_EVERY_DAYS": "0",
        }

        def both(days_ago: float) -> None:
            started = clock.days_ago(days_ago)
            for name, ws, extra in (("duckdb", to_duckdb, {}), ("postgres", to_postgres, pg_database.env())):
                result = ws.run({**env, **extra})
                assert result.code == 0, result.output
                query = queries[name]
                run_id = query(
                    "SELECT DISTINCT run_id FROM billing.pipeline_runs WHERE started_at = "
                    f"TIMESTAMP WITH TIME ZONE '{started.isoformat()}'"
                )[0][0]
                runs[name].append((run_id, started, snapshot(query)))

        both(60)
        drafted, opened, gone = (
            next(i for i, v in sorted(foh.team.invoices.items()) if v.status == s) for s in ("draft", "sent", "overdue")
        )
        clock.days_ago(50)
        foh.update_invoice(drafted, status="sent")
        foh.update_invoice(opened, status="paid_partially", paid_share=Decimal("0.4"))
        kept = foh.team.invoices.pop(gone)
        k_paid = next(str(i["id"]) for i in kit.invoices if i["status"] == "open")
        kit.update_invoice(k_paid, status="paid")
        both(40)
        clock.days_ago(30)
        foh.update_invoice(opened, status="paid")
        foh.update_invoice(drafted, status="void")
        foh.team.invoices[gone] = kept
        both(20)
        both(1)

    histories = {name: rows_of(query) for name, query in queries.items()}
    for name, history in histories.items():
        assert history == expected_history(runs[name]), name
    assert [r for r in histories["duckdb"] if r.valid_from == runs["duckdb"][-1][1]] == []

    def without_run_ids(name: str) -> list[tuple[Any, ...]]:
        return [(*r.key, *r.state, r.valid_from, r.valid_to) for r in histories[name]]

    assert without_run_ids("postgres") == without_run_ids("duckdb")
    for view, order in (
        ("invoice_payments", "provider, account, invoice_id"),
        ("receivables_month_end", "provider, account, currency, month"),
    ):
        in_duckdb = to_duckdb.query(f"SELECT * FROM billing.{view} ORDER BY {order}")
        in_postgres = pg_database.query(f"SELECT * FROM billing.{view} ORDER BY {order}")
        assert in_duckdb, view
        assert in_postgres == in_duckdb, view
    latest = pg_database.query(
        "SELECT provider, account, currency, outstanding FROM billing.receivables_month_end "
        "WHERE month = date_trunc('month', current_date) AND outstanding <> 0 ORDER BY 1, 2, 3"
    )
    aging = pg_database.query(
        "SELECT provider, account, currency, sum(outstanding) FROM billing.receivables_aging "
        "GROUP BY 1, 2, 3 HAVING sum(outstanding) <> 0 ORDER BY 1, 2, 3"
    )
    assert latest == aging
    current = {r.key: r.state for r in histories["postgres"] if r.valid_to is None}
    assert current == snapshot(queries["postgres"])


def test_remap_corrects_the_current_history_rows_in_place_on_postgres(
    tmp_path: Path, pg_database: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(tmp_path)
    query: Query = lambda sql: pg_database.query(sql)  # noqa: E731
    kit = kitchen.create_app(seed=4)
    with serve(kit) as server:
        env = {**kit.pipeline_env(server.url), **pg_database.env()}
        clock.days_ago(3)
        assert ws.run(env).code == 0
        clock.days_ago(2)
        kit.update_invoice(next(str(i["id"]) for i in kit.invoices if i["status"] == "open"), status="paid")
        clock.days_ago(1)
        assert ws.run(env).code == 0
    before = rows_of(query)
    from sources.kitchen import mapping

    monkeypatch.setattr(mapping, "STATUSES", {**mapping.STATUSES, "paid": "open"})
    remapped = ws.run(pg_database.env(), "remap")
    assert remapped.code == 0, remapped.output
    after = rows_of(query)
    assert [(r.key, r.valid_from, r.valid_to) for r in after] == [(r.key, r.valid_from, r.valid_to) for r in before]
    assert {r.key for r in after if r.status == "open"} > {r.key for r in before if r.status == "open"}
    assert {r.key: r.state for r in after if r.valid_to is None} == snapshot(query)
