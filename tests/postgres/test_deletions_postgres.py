"""Deletions on Postgres (docs/canonical-model.md, "Deletions"), through the real command line:
the same marking, clearing and guard as on DuckDB, through dlt's SQL client."""

from __future__ import annotations

import pytest

from sandbox import kitchen
from tests.postgres.cluster import Database
from tests.postgres.support import DATASET
from tests.support import Workspace, serve

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def deleted(db: Database, table: str, key: str) -> set[str]:
    return {r[0] for r in db.query(f"SELECT {key} FROM {DATASET}.{table} WHERE deleted_at IS NOT NULL")}


def test_deletions_are_marked_refused_and_cleared_on_postgres(workspace: Workspace, pg_database: Database) -> None:
    app = kitchen.create_app(seed=11)
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), **pg_database.env()}
        assert workspace.run(env).code == 0
        invoice = app.invoices[2]
        app.delete_invoice(str(invoice["id"]))
        client = app.clients[-1]
        app.delete_client(str(client["id"]))
        marked = workspace.run(env)
        assert marked.code == 0, marked.output
        assert deleted(pg_database, "invoices", "invoice_id") == {str(invoice["id"])}
        assert deleted(pg_database, "clients", "client_id") == {str(client["id"])}
        assert (
            pg_database.scalar(
                f"SELECT count(*) FROM {DATASET}.invoices_current WHERE invoice_id = %s", str(invoice["id"])
            )
            == 0
        )
        runs = f"SELECT deleted FROM {DATASET}.pipeline_runs WHERE provider = 'kitchen' ORDER BY finished_at DESC"
        assert pg_database.scalar(runs) == 2
        # Restored as it was: cleared; then too many gone at once: refused, exit 1, nothing marked.
        with app.lock:
            app.invoices.insert(2, invoice)
        for doomed in list(app.invoices[len(app.invoices) // 2 :]):  # the restored one is before
            app.delete_invoice(str(doomed["id"]))
        refused = workspace.run(env)
        assert refused.code == 1, refused.output
        assert "deletions refused" in refused.stderr
        assert deleted(pg_database, "invoices", "invoice_id") == set()  # cleared, and nothing new marked
        confirmed = workspace.run(env, "load", "--allow-mass-delete")
    assert confirmed.code == 0, confirmed.output
    live = pg_database.scalar(f"SELECT count(*) FROM {DATASET}.invoices WHERE deleted_at IS NULL")
    assert live == len(app.invoices)
    assert pg_database.scalar(f"SELECT count(*) FROM {DATASET}.invoices_current") == live
