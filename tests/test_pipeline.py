"""The pipeline across providers: isolation of failures, of state and of resets."""

from __future__ import annotations

import shutil
import subprocess
import sys
from contextlib import ExitStack

import duckdb
import pytest

from sandbox import fohlio, invoicexpress, kitchen
from tests.support import REPO, Workspace, serve

pytestmark = pytest.mark.integration


def counts(ws: Workspace, provider: str) -> tuple[int, int, int]:
    return tuple(
        ws.scalar(f"SELECT count(*) FROM billing.{t} WHERE provider = ?", provider)
        for t in ("invoices", "invoice_items", "clients")
    )


def expected(app) -> tuple[int, int, int]:
    s = app.summary()
    return s["invoices"], s["lines"], s["clients"]


def test_one_failing_provider_does_not_stop_the_others(workspace):
    apps = {
        "kitchen": kitchen.create_app(),
        "fohlio": fohlio.create_app(),
        "invoicexpress": invoicexpress.create_app(clients=2, invoices_per_client=2),
    }
    with ExitStack() as stack:
        env: dict[str, str] = {}
        for app in apps.values():
            env.update(app.pipeline_env(stack.enter_context(serve(app)).url))
        env["SOURCES__INVOICEXPRESS__API_KEY"] = "not-the-key-31415926"
        result = workspace.run(env)
    assert result.code == 1
    rows = result.summary()
    assert rows["invoicexpress"]["status"] == "failed"
    assert rows["kitchen"]["status"] == "loaded" and rows["fohlio"]["status"] == "loaded"
    assert counts(workspace, "kitchen") == expected(apps["kitchen"])
    assert counts(workspace, "fohlio") == expected(apps["fohlio"])
    assert counts(workspace, "invoicexpress") == (0, 0, 0)
    assert "SOURCES__INVOICEXPRESS__API_KEY" in result.stderr and "not-the-key-31415926" not in result.output


def test_each_provider_keeps_its_own_state_and_a_reset_touches_only_its_own_rows(workspace):
    kitchen_app, fohlio_app = kitchen.create_app(), fohlio.create_app()
    with serve(kitchen_app) as k, serve(fohlio_app) as f:
        env = {**kitchen_app.pipeline_env(k.url), **fohlio_app.pipeline_env(f.url)}
        assert workspace.run({**env, "PROVIDERS": "kitchen"}).code == 0
        assert workspace.run({**env, "PROVIDERS": "fohlio"}).code == 0

        # Fohlio's run did not move Kitchen's cursor: Kitchen's rerun rewrites nothing.
        again = workspace.run({**env, "PROVIDERS": "kitchen"})
        assert again.code == 0
        kitchen_total = expected(kitchen_app)[0]
        assert again.summary()["kitchen"]["unchanged"] == f"{kitchen_total:,}"
        assert again.summary()["kitchen"]["invoices"] == "0"

        fohlio_rows = workspace.query(
            "SELECT * EXCLUDE (raw) FROM billing.invoices WHERE provider = 'fohlio' ORDER BY invoice_id"
        )
        reset = workspace.run(env, "reset", "kitchen")
        assert reset.code == 0, reset.output
        assert counts(workspace, "kitchen") == (0, 0, 0)
        assert (
            workspace.query(
                "SELECT * EXCLUDE (raw) FROM billing.invoices WHERE provider = 'fohlio' ORDER BY invoice_id"
            )
            == fohlio_rows
        )

        # Kitchen starts over in full; Fohlio's cursor survived the reset: it asks only for changes.
        fohlio_app.log.clear()
        both = workspace.run(env)
        assert both.code == 0, both.output
        rows = both.summary()
        assert rows["kitchen"]["invoices"] == f"{kitchen_total:,}" and rows["kitchen"]["unchanged"] == "0"
        assert rows["fohlio"]["invoices"] == "0"
        invoice_calls = [e for e in fohlio_app.log.entries() if e.path == "/client_invoices"]
        assert invoice_calls and all("updated_since" in e.query for e in invoice_calls)
    assert counts(workspace, "kitchen") == expected(kitchen_app)
    assert counts(workspace, "fohlio") == expected(fohlio_app)


@pytest.mark.sockets  # real sockets and a subprocess, as a user runs it
def test_the_committed_configuration_loads_into_warehouse_duckdb_by_default(workspace):
    """Run where a user runs: with the repository's own .dlt/config.toml, and no DuckDB path set."""
    (workspace.path / ".dlt").mkdir()
    shutil.copy(REPO / ".dlt" / "config.toml", workspace.path / ".dlt" / "config.toml")
    app = invoicexpress.create_app(clients=2, invoices_per_client=3)
    with serve(app) as server:
        env = workspace.env(app.pipeline_env(server.url))
        del env["DESTINATION__DUCKDB__CREDENTIALS"]
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines.billing"],
            cwd=workspace.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr
    assert workspace.db == workspace.path / "warehouse.duckdb" and workspace.db.exists()
    assert counts(workspace, "invoicexpress") == expected(app)
    query = subprocess.run(
        [sys.executable, "-m", "pipelines.query", "SELECT count(*) AS n FROM billing.invoices"],
        cwd=workspace.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert query.returncode == 0, query.stderr
    assert str(expected(app)[0]) in query.stdout


@pytest.mark.sockets  # real sockets and a subprocess, as a user runs it
def test_a_run_after_an_interrupted_one_loads_what_was_left_and_then_extracts_afresh(workspace, tmp_path):
    """An interrupted run left a complete extract unloaded; upstream then changed. The next normal
    run must load both: it ends exactly like one clean run made now."""
    app = kitchen.create_app()
    with serve(app) as server:
        env = workspace.env(app.pipeline_env(server.url))
        extract_only = (
            "from pipelines.run import make_pipeline\n"
            "from pipelines.registry import discover\n"
            "make_pipeline().extract(discover()['kitchen'].source())\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", extract_only],
            cwd=workspace.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert (
            not workspace.db.exists()
            or workspace.scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'invoices'") == 0
        )

        changed = app.invoices[3]["id"]
        app.update_invoice(changed, memo="changed after the interrupted run")
        result = workspace.run(app.pipeline_env(server.url))
        assert result.code == 0, result.output
        assert "completing the load of an interrupted run" in result.stderr
        assert result.summary()["kitchen"]["invoices"] == "1"  # fresh extract: the one change

        clean = Workspace(tmp_path / "clean")
        clean.path.mkdir()
        assert clean.run(app.pipeline_env(server.url)).code == 0
    sql = "SELECT * EXCLUDE (raw), raw::VARCHAR FROM billing.{} ORDER BY ALL"
    for table in ("invoices", "invoice_items", "clients"):
        assert workspace.query(sql.format(table)) == clean.query(sql.format(table)), table
    assert workspace.scalar("SELECT notes FROM billing.invoices WHERE invoice_id = ?", changed) == (
        "changed after the interrupted run"
    )


def test_a_duckdb_file_named_like_the_dataset_is_refused_before_anything_runs(workspace):
    from sandbox.kitchen import create_app

    app = create_app()
    with serve(app) as server:
        result = workspace.run({**app.pipeline_env(server.url), "DESTINATION__DUCKDB__CREDENTIALS": "billing.duckdb"})
    assert result.code == 2, result.output
    assert "is named like the dataset 'billing'" in result.stderr and "warehouse.duckdb" in result.stderr
    assert app.log.count() == 0 and not (workspace.path / "billing.duckdb").exists()


def test_switching_warehouses_under_one_pipeline_name_never_skips_a_change(workspace, tmp_path):
    """Local state describes one warehouse: loading A, then B, then A again under the same
    pipeline name must not take B's cursors for A's (A would miss what changed while B loaded)."""
    app = kitchen.create_app(fixtures=False)
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run({**env, "DESTINATION__DUCKDB__CREDENTIALS": str(a)}).code == 0
        changed = app.invoices[3]["id"]
        app.update_invoice(changed, memo="changed while B was loaded")
        assert workspace.run({**env, "DESTINATION__DUCKDB__CREDENTIALS": str(b)}).code == 0
        back = workspace.run({**env, "DESTINATION__DUCKDB__CREDENTIALS": str(a)})
    assert back.code == 0, back.output
    assert "that state is set aside" in back.stderr
    with duckdb.connect(str(a), read_only=True) as con:
        memo = con.execute("SELECT notes FROM billing.invoices WHERE invoice_id = ?", [str(changed)]).fetchone()
    assert memo == ("changed while B was loaded",)


def test_an_account_failing_mid_run_counts_what_it_committed_and_the_next_run_finds_no_stopped_run(workspace):
    """A body cut short in the second batch of clients fails InvoiceXpress's second run: the
    first batch stays loaded and its client's deletion is marked, `pipeline_runs` counts the
    committed rows (not the ones read before the fault), the advice fits the fault, and the next
    run resumes the sweep after the committed batch with no extract of a stopped run to tidy."""
    app = invoicexpress.create_app()
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), "BATCH_CLIENTS": "4", "SOURCES__INVOICEXPRESS__CONCURRENCY": "1"}
        assert workspace.run(env).code == 0
        gone = app.all_invoices()[0]["id"]
        app.delete_invoice(gone)
        app.inject("truncate", path="/clients/{client_id}/invoices.json", after=5, times=None)
        app.log.clear()
        failed = workspace.run(env)
        first_batch = listed_clients(app)[:4]
        assert failed.code == 1, failed.output
        assert "cut short or is malformed" in failed.stderr and "base_url" not in failed.stderr
        # The explanation is an error line: what `grep ERROR` on a cron log finds.
        assert any(" ERROR " in line and "cut short" in line for line in failed.stderr.splitlines())
        marked = "SELECT invoice_id FROM billing.invoices WHERE deleted_at IS NOT NULL"
        assert workspace.query(marked) == [(str(gone),)]
        runs = (
            "SELECT status, invoices, lines FROM billing.pipeline_runs WHERE provider = 'invoicexpress' ORDER BY run_id"
        )
        lines = sum(len(i["items"]) for i in app.all_invoices() if str(i["client"]["id"]) in first_batch)
        assert workspace.query(runs)[1][0] == "failed" and workspace.query(runs)[1][2] == lines

        app.faults.clear()
        app.log.clear()
        again = workspace.run(env)
    assert again.code == 0, again.output
    assert "stopped run" not in again.stderr and "discarded" not in again.stderr
    assert "resuming the sweep started" in again.stderr
    assert not set(listed_clients(app)) & set(first_batch)
    assert workspace.query(marked) == [(str(gone),)]


def listed_clients(app) -> list[str]:
    """The clients whose documents InvoiceXpress was asked for, in the order asked."""
    asked = [r.path.split("/")[-2] for r in app.log.entries() if r.path.endswith("/invoices.json")]
    return list(dict.fromkeys(asked))
