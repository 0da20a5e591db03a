"""`billing-elt remap` on Postgres through the real command line: rows altered in the warehouse are
restored from their stored payloads (jsonb, read back as its text), no sandbox served, and a
second remap writes nothing at all (no row gets a new transaction id)."""

from __future__ import annotations

import pytest

from sandbox import flowpayroll, kitchen
from tests.postgres.cluster import Database
from tests.postgres.support import DATASET, pg_row_versions, pg_snapshot
from tests.support import Workspace, serve

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_remap_restores_rows_from_raw_and_a_second_one_writes_nothing(
    workspace: Workspace, pg_database: Database
) -> None:
    for provider, app in (("kitchen", kitchen.create_app(seed=3)), ("flowpayroll", flowpayroll.create_app(seed=3))):
        with serve(app) as server:
            result = workspace.run({**app.pipeline_env(server.url), **pg_database.env(), "PROVIDERS": provider})
        assert result.code == 0, result.output
    before = pg_snapshot(pg_database)
    invoice = pg_database.scalar(f"SELECT min(invoice_id) FROM {DATASET}.invoices WHERE provider = 'kitchen'")
    lines = pg_database.scalar(f"SELECT count(*) FROM {DATASET}.invoice_items WHERE invoice_id = %s", invoice)
    pg_database.query(
        f"UPDATE {DATASET}.invoices SET total = total + 1, issue_date = DATE '1999-01-01' WHERE invoice_id = %s "
        "RETURNING 1",
        invoice,
    )
    pg_database.query(f"DELETE FROM {DATASET}.invoice_items WHERE invoice_id = %s RETURNING 1", invoice)
    emailed = "provider = 'flowpayroll' AND email IS NOT NULL"
    flowpayroll_clients = pg_database.scalar(f"SELECT count(*) FROM {DATASET}.clients WHERE {emailed}")
    assert flowpayroll_clients > 0
    pg_database.query(f"UPDATE {DATASET}.clients SET email = NULL WHERE {emailed} RETURNING 1")

    remapped = workspace.run(pg_database.env(), "remap")
    assert remapped.code == 0, remapped.output
    assert pg_snapshot(pg_database) == before
    assert "invoices          1 changed · 0 added · 0 removed" in remapped.stderr
    assert f"invoice_items     0 changed · {lines} added · 0 removed" in remapped.stderr
    assert f"clients           {flowpayroll_clients} changed · 0 added · 0 removed" in remapped.stderr

    versions = pg_row_versions(pg_database)
    again = workspace.run(pg_database.env(), "remap")
    assert again.code == 0, again.output
    assert "nothing changed, nothing written" in again.stderr
    assert pg_row_versions(pg_database) == versions
