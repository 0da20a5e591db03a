"""Kills of an incremental run of a batched account, mid-sweep: the next ordinary run resumes the
sweep and marks every deletion the interrupted one would have (tests/unattended/test_kill_recovery.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox import invoicexpress
from tests.support import Workspace, serve
from tests.unattended.test_kill_recovery import killed_run, leftovers
from tests.unattended.test_kill_recovery_batches import BATCH_ENV

pytestmark = pytest.mark.integration


# The second run of the same InvoiceXpress account after upstream changes (an invoice changed,
# one deleted, one added, in the first batch and in the last): each batch merges, and the run
# is a sweep for deletions that only ends with the last batch.
INCREMENTAL_KILL_POINTS = {
    "between batches, the first merged": "dlt.common.storages.load_storage:LoadStorage.complete_load_package:1:after",
    "mid-extract of the second batch": "sources.shared.http:ApiClient.request:7:before",
    "during the merge of the second batch": "dlt.destinations.job_client_impl:SqlLoadJob.run:1:after",
    "the last batch loaded, deletions not marked": "pipelines.deletions:_apply:1:before",
}


def settled(ws: Workspace) -> dict[str, list[tuple[object, ...]]]:
    """The canonical tables with `deleted_at` as whether the row is deleted (its time is the
    marking run's start)."""
    sql = "SELECT * EXCLUDE (raw, deleted_at), raw::VARCHAR, deleted_at IS NULL FROM billing.{} ORDER BY ALL"
    return {t: ws.query(sql.format(t)) for t in ("invoices", "clients")} | {
        "invoice_items": ws.query("SELECT * EXCLUDE (raw), raw::VARCHAR FROM billing.invoice_items ORDER BY ALL")
    }


@pytest.mark.timeout(900)  # a sweep of kills, each followed by a run: minutes on a busy machine
def test_an_incremental_run_of_a_batched_account_killed_mid_sweep_is_repaired_by_one_ordinary_run(tmp_path: Path):
    """After a kill anywhere in the second run (the first batches merged, the sweep unfinished),
    one ordinary run leaves what one clean second run leaves: the changes of every batch and the
    deletions of every client, including those the killed run had already read."""
    app = invoicexpress.create_app()
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), **BATCH_ENV}
        names = ["clean", *INCREMENTAL_KILL_POINTS]
        spaces = {name: Workspace(tmp_path / name.replace(" ", "_").replace(",", "")) for name in names}
        for ws in spaces.values():
            ws.path.mkdir()
            assert ws.run(env).code == 0

        invoices = app.all_invoices()
        first, last = invoices[0], invoices[-1]
        deleted = [invoices[1]["id"], invoices[-2]["id"]]
        app.update_invoice(first["id"], status="settled")
        app.update_invoice(last["id"], status="canceled")
        for invoice_id in deleted:
            app.delete_invoice(invoice_id)
        app.add_invoice(first["client"]["id"])

        clean = spaces.pop("clean")
        assert clean.run(env).code == 0
        expected = settled(clean)
        gone = sorted(str(i) for i in deleted)
        marked = "SELECT invoice_id FROM billing.invoices WHERE deleted_at IS NOT NULL ORDER BY 1"
        assert [r[0] for r in clean.query(marked)] == gone

        def scenario(point: str) -> str | None:
            ws = spaces[point]
            killed = killed_run(ws, env, INCREMENTAL_KILL_POINTS[point])
            if killed.returncode != -9:
                return f"the run was not killed (exit {killed.returncode}):\n{killed.stderr[-2000:]}"
            after = ws.run(env)
            if after.code != 0 or "Traceback" in after.stderr:
                return f"the next run exited {after.code}:\n{after.stderr[-3000:]}"
            if [r[0] for r in ws.query(marked)] != gone:
                return f"deleted after one rerun: {ws.query(marked)}, expected {gone}"
            if settled(ws) != expected:
                return "the tables differ from a clean run's"
            if leftovers(ws):
                return f"left in dlt's local state: {leftovers(ws)}"
            return None

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = dict(zip(INCREMENTAL_KILL_POINTS, pool.map(scenario, INCREMENTAL_KILL_POINTS), strict=True))
    problems = [f"{point}: {problem}" for point, problem in outcomes.items() if problem]
    assert not problems, "\n\n".join(problems)
