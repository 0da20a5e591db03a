"""A run killed inside its load on Postgres is repaired by the next ordinary run, as on DuckDB
(tests/unattended/test_kill_recovery.py): the kill comes right after one table's INSERT committed,
before dlt marked the job done, so that the next run's load runs that file again: the history's
copy into staging, a merged table's, dlt's state row (a unique `_dlt_id`), the run's own record."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import kitchen
from tests.postgres.cluster import Database
from tests.postgres.support import DATASET
from tests.support import Workspace, serve
from tests.unattended.test_kill_recovery import killed_run

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

INSERTS = "dlt.destinations.insert_job_client:InsertValuesLoadJob.run:1:after:load_table_name={}"


def states(db: Database) -> dict[str, list[tuple[object, ...]]]:
    key = "provider, account, invoice_id"
    return {
        "invoices": db.query(f"SELECT {key}, status, balance_due, total FROM {DATASET}.invoices ORDER BY 1, 2, 3"),
        "current history": db.query(
            f"SELECT {key}, status, balance_due, total FROM {DATASET}.invoice_history "
            "WHERE valid_to IS NULL ORDER BY 1, 2, 3"
        ),
        "history rows": db.query(
            f"SELECT {key}, count(*) FROM {DATASET}.invoice_history GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ),
    }


@pytest.mark.parametrize("table", ["invoice_history", "invoices", "_dlt_pipeline_state", "pipeline_runs"])
def test_an_insert_that_a_kill_left_unmarked_is_not_run_twice(
    tmp_path: Path, pg_database: Database, table: str
) -> None:
    app = kitchen.create_app(seed=3, clients=3, invoices=20)
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), **pg_database.env()}
        ws = Workspace(tmp_path / "ws")
        ws.path.mkdir()
        killed = killed_run(ws, env, INSERTS.format(table))
        assert killed.returncode == -9, killed.stderr[-2000:]
        after = ws.run(env)
        assert after.code == 0, after.output
        assert "completing the load of an interrupted run" in after.stderr
        if table == "invoice_history":
            removed = (
                f"invoice_history: {len(app.invoices)} row(s) of an interrupted appending load removed in the staging"
            )
            assert removed in after.stderr
    found = states(pg_database)
    assert len(found["invoices"]) == len(app.invoices)
    assert found["current history"] == found["invoices"]
    assert {n for *_, n in found["history rows"]} == {1}
    twice = f"SELECT run_id, provider, account FROM {DATASET}.pipeline_runs GROUP BY 1, 2, 3 HAVING count(*) > 1"
    assert pg_database.query(twice) == []
