"""Any kill recovers by itself: a run SIGKILLed anywhere (mid-extract, extract committed, inside
dlt's normalize commit, during the load (a first load appends; the history's copy to the staging
table its merge reads) and the merge (of a later batch),
after the load, between two batches of clients, before the invoice history is settled) is followed
by one ordinary run, and the warehouse then holds exactly what one clean run writes: the same
rows, and an invoice history in agreement with them (each invoice's one observed state, current)."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox import fohlio, kitchen
from sandbox.framework import App
from tests.support import Workspace, serve

pytestmark = pytest.mark.integration

CANONICAL = ("invoices", "invoice_items", "clients")

KILL_POINTS = {
    "mid-extract": "sources.shared.http:ApiClient.request:2:before",
    "extract written, not committed": "dlt.extract.storage:ExtractStorage.close_writers:1:after",
    "extract committed": "dlt.extract.storage:ExtractStorage.commit_new_load_package:1:after",
    "normalized, not committed": "dlt.common.storages.load_storage:LoadStorage.commit_new_load_package:1:before",
    "inside the normalize commit": "dlt.common.storages.load_storage:LoadStorage.commit_new_load_package:1:after",
    "during the load": "dlt.destinations.impl.duckdb.duck:DuckDbCopyJob.run:2:after",
    # The history reaches the staging table its scd2 merge reads, which a resumed load does not empty.
    "history copied to staging": (
        "dlt.destinations.impl.duckdb.duck:DuckDbCopyJob.run:1:after:load_table_name=invoice_history"
    ),
    "pipeline_runs inserted, not marked done": (
        "dlt.destinations.insert_job_client:InsertValuesLoadJob.run:1:after:load_table_name=pipeline_runs"
    ),
    "loaded, package not completed": "dlt.common.storages.load_storage:LoadStorage.complete_load_package:1:before",
    "after the load": "dlt.common.storages.load_storage:LoadStorage.complete_load_package:1:after",
    "writing pipeline_runs": "dlt.extract.storage:ExtractStorage.commit_new_load_package:2:after",
    # dlt writes its state files through a temporary copy renamed over the file (save_atomic):
    # killed before a rename, the copy stays beside it.
    "a file half-saved": "os:replace:2:before",
    "a schema half-saved": "os:replace:12:before",
    "loaded, the history not settled": "pipelines.history:settle:1:before",
}


def killed_run(ws: Workspace, env: dict[str, str], spec: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.unattended.killpoint", "load"],
        cwd=ws.path,
        env=ws.env({**env, "BILLING_TEST_KILL": spec}),
        capture_output=True,
        text=True,
        timeout=120,
    )


def tables(ws: Workspace) -> dict[str, list[tuple[object, ...]]]:
    sql = "SELECT * EXCLUDE (raw), raw::VARCHAR FROM billing.{} ORDER BY ALL"
    found = {t: ws.query(sql.format(t)) for t in CANONICAL}
    # The states observed, without when (a killed run's rows keep its start and id).
    found["invoice_history"] = ws.query(
        "SELECT * EXCLUDE (valid_from, run_id), count(*) OVER (PARTITION BY provider, account, invoice_id) "
        "FROM billing.invoice_history ORDER BY ALL"
    )
    return found


def history_disagrees(ws: Workspace) -> str | None:
    """Why the invoice history disagrees with the tables (docs/canonical-model.md, "Invariants"), or None."""
    state = "status, balance_due, total, due_date, currency"
    current = ws.query(
        f"SELECT provider, account, invoice_id, {state}, deleted FROM billing.invoice_history "
        "WHERE valid_to IS NULL ORDER BY ALL"
    )
    invoices = ws.query(
        f"SELECT provider, account, invoice_id, {state}, deleted_at IS NOT NULL FROM billing.invoices ORDER BY ALL"
    )
    if current != invoices:
        return f"the current history rows are not the invoices' states: {len(current)} rows, {len(invoices)} invoices"
    starts = ws.query("SELECT run_id, count(DISTINCT valid_from) FROM billing.invoice_history GROUP BY ALL")
    if any(n != 1 for _, n in starts):
        return f"a run's history rows have several start times: {starts}"
    return None


def leftovers(ws: Workspace) -> list[str]:
    root = ws.path / "pipelines" / "billing"
    found = []
    for folder in ("normalize/extracted", "load/new", "load/normalized", "load/loaded"):
        found += [f"{folder}/{p.name}" for p in (root / folder).glob("*")]
    found += [p.name for p in (root / "normalize").glob("*") if p.name not in ("extracted", ".version")]
    # The temporary copy of a file dlt was saving (16 hex digits), wherever it was left.
    found += [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and re.fullmatch("[0-9a-f]{16}", p.name)]
    return found


@pytest.mark.timeout(900)  # a sweep of kills, each followed by a run: minutes on a busy machine
def test_a_run_killed_anywhere_is_repaired_by_the_next_ordinary_run(tmp_path: Path):
    assert_kills_recover(tmp_path, kitchen.create_app(), KILL_POINTS)


def assert_kills_recover(tmp_path: Path, app: App, points: dict[str, str], extra: dict[str, str] | None = None) -> None:
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), **(extra or {})}
        clean = Workspace(tmp_path / "clean")
        clean.path.mkdir()
        assert clean.run(env).code == 0
        expected = tables(clean)
        assert expected["invoice_history"] and history_disagrees(clean) is None

        def scenario(item: tuple[str, str]) -> tuple[str, str | None]:
            point, spec = item
            ws = Workspace(tmp_path / point.replace(" ", "_").replace(",", ""))
            ws.path.mkdir()
            killed = killed_run(ws, env, spec)
            if killed.returncode != -9:
                return point, f"the run was not killed (exit {killed.returncode}):\n{killed.stderr[-2000:]}"
            after = ws.run(env)
            if after.code != 0 or "Traceback" in after.stderr:
                return point, f"the next run exited {after.code}:\n{after.stderr[-3000:]}"
            if "took over the run lock" not in after.stderr:
                return point, f"the next run did not say it took over the lock:\n{after.stderr[-2000:]}"
            if tables(ws) != expected:
                return point, "the tables differ from a clean run's"
            disagreement = history_disagrees(ws)
            if disagreement is not None:
                return point, disagreement
            if leftovers(ws):
                return point, f"left in dlt's local state: {leftovers(ws)}"
            statuses = ws.query("SELECT status FROM billing.pipeline_runs")
            if ("loaded",) not in statuses:
                return point, f"pipeline_runs holds {statuses}"
            twice = ws.query(
                "SELECT run_id, provider, account FROM billing.pipeline_runs GROUP BY ALL HAVING count(*) > 1"
            )
            if twice:
                return point, f"pipeline_runs holds a run's row twice: {twice}"
            return point, None

        with ThreadPoolExecutor(max_workers=2) as pool:
            problems = [f"{point}: {problem}" for point, problem in pool.map(scenario, points.items()) if problem]
    assert not problems, "\n\n".join(problems)


@pytest.mark.timeout(900)  # a sweep of kills, each followed by a run: minutes on a busy machine
def test_a_sweep_killed_before_its_deletions_are_marked_sweeps_again_on_the_next_run(tmp_path: Path):
    """Fohlio is read incrementally and swept for deletions every `reconcile_every_days`. A run
    killed after the sweep's load and before the marking must not count as the week's sweep:
    the next ordinary run sweeps again and marks what the killed one could not."""
    app = fohlio.create_app(seed=5)
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        ws = Workspace(tmp_path / "ws")
        ws.path.mkdir()
        assert ws.run(env).code == 0  # the first run reads everything: a sweep
        invoice_id = next(iter(app.team.invoices))
        app.delete_invoice(invoice_id)
        killed = killed_run(
            ws, {**env, "SOURCES__FOHLIO__RECONCILE_EVERY_DAYS": "0"}, "pipelines.deletions:_apply:1:before"
        )
        assert killed.returncode == -9, killed.stderr[-2000:]
        deleted = "SELECT invoice_id FROM billing.invoices WHERE deleted_at IS NOT NULL"
        assert ws.query(deleted) == []
        after = ws.run(env)  # the default week: due again only because the killed sweep was never marked
    assert after.code == 0, after.stderr
    assert ws.query(deleted) == [(str(invoice_id),)]
