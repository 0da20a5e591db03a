"""Postgres as the warehouse, through the real command line: DESTINATION_TYPE=postgres and the
credentials in the environment, as a user would set them, against the sandboxes on loopback."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox import fohlio, kitchen
from sources.shared.model import PRIMARY_KEYS
from tests.postgres.cluster import Database
from tests.postgres.support import (
    DATASET,
    TABLES,
    counts_by_provider,
    every_sandbox,
    expected_counts,
    pg_row_versions,
    pg_rows,
    pg_snapshot,
)
from tests.support import Workspace, serve

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

# InvoiceXpress has no update cursor: every run rewrites its documents, with identical values
# (sources/invoicexpress/__init__.py).
REWRITES_UNCHANGED = {"invoicexpress"}


def test_every_provider_loads_exactly_and_without_a_warning(workspace: Workspace, pg_database: Database) -> None:
    with every_sandbox() as (apps, env):
        result = workspace.run({**env, **pg_database.env()})
    assert result.code == 0, result.output
    assert "WARNING" not in result.output and "Warning" not in result.output, result.output
    assert counts_by_provider(pg_database) == {name: expected_counts(app) for name, app in apps.items()}
    for name, app in apps.items():
        totals = dict(
            pg_database.query(
                f"SELECT currency, sum(total) FROM {DATASET}.invoices WHERE provider = %s GROUP BY 1", name
            )
        )
        assert totals == {c: Decimal(t) for c, t in app.summary()["totals"].items()}, name
    # the dlt bookkeeping sits beside the canonical tables, in the same schema
    tables = {r[0] for r in pg_database.query("SELECT tablename FROM pg_tables WHERE schemaname = %s", DATASET)}
    assert tables >= {*TABLES, "_dlt_loads", "_dlt_version", "_dlt_pipeline_state"}


def test_canonical_tables_have_their_primary_keys_and_indexes(workspace: Workspace, pg_database: Database) -> None:
    app = kitchen.create_app(seed=3, clients=3, invoices=6)
    with serve(app) as server:
        assert workspace.run({**app.pipeline_env(server.url), **pg_database.env()}).code == 0
    for table in TABLES:
        keys = pg_database.query(
            """SELECT tc.constraint_name, kcu.column_name
               FROM information_schema.table_constraints tc
               JOIN information_schema.key_column_usage kcu
                 USING (constraint_catalog, constraint_schema, constraint_name)
               WHERE tc.table_schema = %s AND tc.table_name = %s AND tc.constraint_type = 'PRIMARY KEY'
               ORDER BY kcu.ordinal_position""",
            DATASET,
            table,
        )
        assert [column for _, column in keys] == list(PRIMARY_KEYS[table]), table
        assert {name for name, _ in keys} == {f"{table}_pkey"}
        index = pg_database.scalar(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s AND indexname = %s",
            DATASET,
            table,
            f"{table}_pkey",
        )
        assert index == (
            f"CREATE UNIQUE INDEX {table}_pkey ON {DATASET}.{table} USING btree ({', '.join(PRIMARY_KEYS[table])})"
        )
        not_null = pg_database.query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s AND is_nullable = 'NO'",
            DATASET,
            table,
        )
        assert {c for (c,) in not_null} == set(PRIMARY_KEYS[table])
    # merge staging tables may hold a key twice before the merge: they have no key
    assert (
        pg_database.scalar(
            "SELECT count(*) FROM information_schema.table_constraints "
            "WHERE table_schema = %s AND constraint_type = 'PRIMARY KEY'",
            f"{DATASET}_staging",
        )
        == 0
    )
    # the invoice types the contract asks for
    types = dict(
        pg_database.query(
            "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c "
            "JOIN pg_attribute a ON a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass "
            "AND a.attname = c.column_name WHERE table_schema = %s AND table_name = 'invoices'",
            DATASET,
        )
    )
    assert types["total"] == "numeric(18,6)" and types["issue_date"] == "date"
    assert types["updated_at"] == "timestamp(6) with time zone" and types["raw"] == "jsonb"


def test_create_indexes_false_leaves_the_keys_out(workspace: Workspace, pg_database: Database) -> None:
    app = kitchen.create_app(seed=3, clients=3, invoices=6)
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), **pg_database.env(), "DESTINATION__POSTGRES__CREATE_INDEXES": "false"}
        assert workspace.run(env).code == 0
    assert pg_database.scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = %s", DATASET) == 0
    assert counts_by_provider(pg_database) == {"kitchen": expected_counts(app)}


def test_a_rerun_without_upstream_change_rewrites_nothing(workspace: Workspace, pg_database: Database) -> None:
    with every_sandbox() as (apps, env):
        env = {**env, **pg_database.env()}
        assert workspace.run(env).code == 0
        before, versions = pg_snapshot(pg_database), pg_row_versions(pg_database)
        again = workspace.run(env)
    assert again.code == 0, again.output
    assert pg_snapshot(pg_database) == before
    rows, after = again.summary(), pg_row_versions(pg_database)
    for name in apps:
        if name in REWRITES_UNCHANGED:
            continue
        assert (rows[name]["invoices"], rows[name]["lines"], rows[name]["clients"]) == ("0", "0", "0"), name
        for table in TABLES:  # not one row written again, not even with the same values
            assert {r for r in after[table] if r[0] == name} == {r for r in versions[table] if r[0] == name}, name


def test_upstream_changes_and_removed_lines_show_after_the_next_run(
    workspace: Workspace, pg_database: Database
) -> None:
    app = kitchen.create_app(seed=15, clients=4, invoices=20)
    changed = next(i for i in app.invoices if len(i["items"]) >= 3)
    emptied = next(i for i in app.invoices if len(i["items"]) == 1)
    untouched = next(i for i in app.invoices if i is not changed and i is not emptied)
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), **pg_database.env()}
        assert workspace.run(env).code == 0
        before = pg_rows(pg_database, "invoices", f"WHERE invoice_id = '{untouched['id']}'")
        app.update_invoice(changed["id"], memo="Paid by wire on the 3rd")
        removed = app.remove_line(changed["id"], 0)
        app.remove_line(emptied["id"])  # its only line: the invoice now has none
        result = workspace.run(env)
    assert result.code == 0, result.output
    assert result.summary()["kitchen"]["invoices"] == "2"
    assert pg_database.scalar(f"SELECT notes FROM {DATASET}.invoices WHERE invoice_id = %s", changed["id"]) == (
        "Paid by wire on the 3rd"
    )
    lines = pg_database.query(
        f"SELECT line_number, item_id FROM {DATASET}.invoice_items WHERE invoice_id = %s ORDER BY 1", changed["id"]
    )
    assert [item for _, item in lines] == [item["id"] for item in app.invoice(changed["id"])["items"]]
    assert [n for n, _ in lines] == list(range(1, len(lines) + 1)) and removed["id"] not in {i for _, i in lines}
    assert pg_database.scalar(f"SELECT count(*) FROM {DATASET}.invoice_items WHERE invoice_id = %s", emptied["id"]) == 0
    assert pg_database.scalar(f"SELECT count(*) FROM {DATASET}.invoice_items WHERE _tombstone IS NOT NULL") == 0
    assert pg_rows(pg_database, "invoices", f"WHERE invoice_id = '{untouched['id']}'") == before
    assert counts_by_provider(pg_database) == {"kitchen": expected_counts(app)}
    total = pg_database.scalar(f"SELECT total FROM {DATASET}.invoices WHERE invoice_id = %s", changed["id"])
    assert total == app.invoice(changed["id"])["total_amount"]


def test_reset_forgets_one_provider_and_the_next_run_loads_it_again(
    workspace: Workspace, pg_database: Database
) -> None:
    kitchen_app, fohlio_app = kitchen.create_app(seed=5), fohlio.create_app(seed=5)
    with serve(kitchen_app) as k, serve(fohlio_app) as f:
        env = {**kitchen_app.pipeline_env(k.url), **fohlio_app.pipeline_env(f.url), **pg_database.env()}
        assert workspace.run(env).code == 0
        fohlio_before = {t: pg_rows(pg_database, t, "WHERE provider = 'fohlio'") for t in TABLES}

        reset = workspace.run(env, "reset", "kitchen")
        assert reset.code == 0, reset.output
        kitchen_rows = sum(expected_counts(kitchen_app))
        assert f"reset kitchen: deleted {kitchen_rows:,} row(s)" in reset.stderr
        assert counts_by_provider(pg_database) == {"fohlio": expected_counts(fohlio_app)}
        assert {t: pg_rows(pg_database, t, "WHERE provider = 'fohlio'") for t in TABLES} == fohlio_before

        again = workspace.run(env)
    assert again.code == 0, again.output
    rows = again.summary()
    assert rows["kitchen"]["invoices"] == str(expected_counts(kitchen_app)[0]) and rows["fohlio"]["invoices"] == "0"
    assert counts_by_provider(pg_database) == {
        "fohlio": expected_counts(fohlio_app),
        "kitchen": expected_counts(kitchen_app),
    }
