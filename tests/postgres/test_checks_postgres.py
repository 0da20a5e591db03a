"""The data checks and schema changes on Postgres, through the real command line: the same
statements as on DuckDB (docs/checks.md), the rows written by dlt beside `pipeline_runs`."""

from __future__ import annotations

import pytest

from sandbox import kitchen
from tests.postgres.cluster import Database
from tests.postgres.support import DATASET
from tests.support import Workspace, serve

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_checks_and_schema_changes_on_postgres(workspace: Workspace, pg_database: Database) -> None:
    app = kitchen.create_app(seed=5)
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), **pg_database.env()}
        first = workspace.run(env)
        assert first.code == 0 and "checks: all 6 passed" in first.stderr, first.output
        for invoice in app.invoices:
            invoice.pop("memo")
            app.update_invoice(invoice["id"], custom_fields={"po": "PO-1"})
        second = workspace.run(env)
        checked = workspace.run(env, "check")
    assert second.code == 0, second.output
    assert "WARNING" not in second.output, second.output
    assert checked.code == 4 and "$.memo (invoice) vanished" in checked.stdout, checked.output
    changes = pg_database.query(
        f"SELECT record_type, path, change, type_before, type_after FROM {DATASET}.schema_changes ORDER BY path"
    )
    assert changes == [
        ("invoice", "$.custom_fields", "added", None, "object"),
        ("invoice", "$.custom_fields.po", "added", None, "string"),
        ("invoice", "$.memo", "vanished", "null|string", None),
    ]
    rows = pg_database.query(
        f"SELECT run_id, check_name, severity, passed FROM {DATASET}.data_checks ORDER BY checked_at, check_name"
    )
    assert len(rows) == 18 and len({r[0] for r in rows}) == 3
    failed = {(name, severity) for _, name, severity, passed in rows if not passed}
    assert failed == {("schema_drift", "error")}
    listed = pg_database.query(
        f"SELECT listed FROM {DATASET}.pipeline_runs WHERE provider = 'kitchen' ORDER BY started_at"
    )
    assert listed == [(len(app.invoices),), (len(app.invoices),)]


def test_check_of_an_empty_postgres_warehouse_has_nothing_to_check(workspace: Workspace, pg_database: Database) -> None:
    result = workspace.run(pg_database.env(), "check")
    assert result.code == 0 and "nothing to check" in result.stderr, result.output
    assert pg_database.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'data_checks'") == []
