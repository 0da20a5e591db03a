"""First loads append (sources/shared/model.py, `TableWriter`): an extract into an account that
holds no rows in the warehouse appends instead of merging, every later one merges, and whatever
interrupts a first run, the next run never doubles a row. Real runs of the command line against
the InvoiceXpress sandbox, into real DuckDB files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import invoicexpress
from tests.support import Workspace, serve
from tests.unattended.test_kill_recovery import killed_run

pytestmark = pytest.mark.integration

CLIENTS, BATCH = 30, 10
DOCUMENTS = "/clients/{client_id}/invoices.json"
APPENDING = "no rows of this account in the warehouse yet: appending instead of merging"
SNAPSHOT = "SELECT * EXCLUDE (raw), raw::VARCHAR FROM billing.{} ORDER BY ALL"
KEYS = {
    "invoices": "provider, account, invoice_id",
    "invoice_items": "provider, account, invoice_id, line_number",
    "clients": "provider, account, client_id",
}


def tables(ws: Workspace) -> dict[str, list[tuple[object, ...]]]:
    return {t: ws.query(SNAPSHOT.format(t)) for t in KEYS}


def assert_no_doubles(ws: Workspace) -> None:
    for table, key in KEYS.items():
        doubled = ws.query(f"SELECT {key}, count(*) FROM billing.{table} GROUP BY ALL HAVING count(*) > 1")
        assert doubled == [], f"{table}: {doubled[:3]}"


def workspace(tmp_path: Path, name: str) -> Workspace:
    ws = Workspace(tmp_path / name)
    ws.path.mkdir()
    return ws


@pytest.fixture(scope="module")
def app() -> invoicexpress.InvoiceXpressSandbox:
    # The published samples included: their untidy records go through both paths.
    return invoicexpress.create_app(clients=CLIENTS, requests_per_minute=None)


def env_for(app: invoicexpress.InvoiceXpressSandbox, url: str, **extra: str) -> dict[str, str]:
    return {**app.pipeline_env(url), "SOURCES__INVOICEXPRESS__CONCURRENCY": "1", "BATCH_CLIENTS": str(BATCH), **extra}


def test_a_first_load_appends_and_the_next_merges_to_the_same_rows(tmp_path: Path, app) -> None:
    with serve(app) as server:
        env = env_for(app, server.url)
        ws = workspace(tmp_path, "ws")
        first = ws.run(env)
        assert first.code in (0, 1), first.stderr
        # Only the first batch's extract finds the account empty; the two after it merge.
        assert first.stderr.count(APPENDING) == 1, first.stderr
        assert first.stderr.count("committing a batch of 10 client(s)") >= 2, first.stderr
        assert "hard_delete" not in first.stderr
        loaded = tables(ws)
        assert len(loaded["invoices"]) > 200
        assert_no_doubles(ws)
        assert ws.scalar("SELECT count(*) FROM billing.invoice_items WHERE _tombstone") == 0

        again = ws.run(env)
        assert again.code == first.code, again.stderr
        assert APPENDING not in again.stderr
        assert tables(ws) == loaded

        # After a reset the account is empty again: the next load appends, to the same rows.
        assert ws.run(env, "reset", "invoicexpress").code == 0
        reloaded = ws.run(env)
        assert reloaded.stderr.count(APPENDING) == 1, reloaded.stderr
        assert tables(ws) == loaded


def test_one_extract_for_the_whole_account_appends_the_same_rows_as_a_merge(tmp_path: Path, app) -> None:
    with serve(app) as server:
        batched = workspace(tmp_path, "batched")
        batched.run(env_for(app, server.url))
        whole = workspace(tmp_path, "whole")
        result = whole.run(env_for(app, server.url, BATCH_CLIENTS="0"))
        assert result.stderr.count(APPENDING) == 1, result.stderr
        assert tables(whole) == tables(batched)
        assert_no_doubles(whole)


def test_a_first_run_that_failed_after_a_batch_is_merged_into_not_appended_twice(tmp_path: Path, app) -> None:
    with serve(app) as server:
        env = env_for(app, server.url)
        clean = workspace(tmp_path, "clean")
        clean.run(env)
        expected = tables(clean)

        ws = workspace(tmp_path, "ws")
        # The 16th client's listing fails for good: the first batch (appended) is committed.
        fault = app.inject("status", DOCUMENTS, method="POST", after=15, times=None, status=400)
        try:
            failed = ws.run(env)
        finally:
            app.faults.remove(fault)
        assert failed.code == 1, failed.stderr
        assert failed.stderr.count(APPENDING) == 1, failed.stderr
        assert int(ws.scalar("SELECT count(DISTINCT client_id) FROM billing.invoices")) > 0

        resumed = ws.run(env)
        assert "resuming the sweep started" in resumed.stderr
        assert APPENDING not in resumed.stderr, resumed.stderr
        assert_no_doubles(ws)
        assert tables(ws) == expected


@pytest.mark.parametrize(
    "spec",
    [
        # Killed right after the first batch (appended) was loaded and before the second was read.
        "dlt.common.storages.load_storage:LoadStorage.complete_load_package:1:after",
        # Killed inside the first batch's load, after its first table was copied.
        "dlt.destinations.impl.duckdb.duck:DuckDbCopyJob.run:1:after",
        # Killed as the first batch's extract is committed: the next run loads or discards that
        # package first, and only then asks whether the account is empty.
        "dlt.extract.storage:ExtractStorage.commit_new_load_package:1:after",
    ],
    ids=["after-first-batch", "during-first-load", "first-batch-extracted"],
)
def test_a_killed_first_run_then_an_ordinary_run_leave_no_doubles(tmp_path: Path, app, spec: str) -> None:
    with serve(app) as server:
        env = env_for(app, server.url)
        clean = workspace(tmp_path, "clean")
        clean.run(env)
        expected = tables(clean)

        ws = workspace(tmp_path, "ws")
        killed = killed_run(ws, env, spec)
        assert killed.returncode == -9, killed.stderr[-2000:]
        after = ws.run(env)
        assert "Traceback" not in after.stderr, after.stderr[-3000:]
        assert_no_doubles(ws)
        assert tables(ws) == expected
