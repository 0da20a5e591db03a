"""dlt's own tools on a real two-provider load, through the real `dlt` command line: `info`,
`trace`, `schema` and `show` leave the pipeline's state as it was, the trace covers the whole
run, `pipeline.dataset()` reads the tables, and `drop` of one provider's resource refuses to
drop the tables every provider shares (README, "dlt's own tools")."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dlt.pipeline.trace import load_trace

from sandbox import fohlio, kitchen
from tests.support import REPO, Result, Workspace, serve

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
COUNTS = "SELECT provider, count(*) FROM billing.{table} GROUP BY 1 ORDER BY 1"
TABLES = ("invoices", "invoice_items", "clients")


def billing_elt(ws: Workspace, env: dict[str, str], *args: str) -> Result:
    proc = subprocess.run(
        [str(BIN / "billing-elt"), *args], cwd=ws.path, env=ws.env(env), capture_output=True, text=True, timeout=300
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def dlt_cli(ws: Workspace, env: dict[str, str], *args: str) -> Result:
    """`dlt -y pipeline --pipelines-dir <the workspace's> ARGS`, as a user would type it in the
    project folder (confirmations accepted, as `-y` does)."""
    proc = subprocess.run(
        [str(BIN / "dlt"), "-y", "pipeline", "--pipelines-dir", str(ws.path / "pipelines"), *args],
        cwd=ws.path,
        env=ws.env(env),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def counts(ws: Workspace) -> dict[str, list[tuple[str, int]]]:
    return {table: [(str(p), int(n)) for p, n in ws.query(COUNTS.format(table=table))] for table in TABLES}


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[tuple[Workspace, dict[str, str]]]:
    """Kitchen and Fohlio loaded into one warehouse, from a folder with the project's
    `.dlt/config.toml` (where dlt's tools are run)."""
    ws = Workspace(tmp_path)
    (ws.path / ".dlt").mkdir()
    shutil.copy(REPO / ".dlt" / "config.toml", ws.path / ".dlt" / "config.toml")
    apps = {"kitchen": kitchen.create_app(fixtures=False), "fohlio": fohlio.create_app(fixtures=False)}
    with serve(apps["kitchen"]) as k, serve(apps["fohlio"]) as f:
        env = {
            **apps["kitchen"].pipeline_env(k.url),
            **apps["fohlio"].pipeline_env(f.url),
            "PROVIDERS": "kitchen,fohlio",
        }
        first = billing_elt(ws, env, "load")
        assert first.code == 0, first.output
        yield ws, env


def state_file(ws: Workspace) -> Path:
    return ws.path / "pipelines" / "billing" / "state.json"


# --- info, trace, schema, show ----------------------------------------------------------------


def test_inspecting_the_pipeline_leaves_its_state_as_it_was(loaded):
    ws, env = loaded
    before = state_file(ws).read_bytes()
    assert json.loads(before)["destination_type"] == "pipelines.warehouse.billing_duckdb"
    for args in (("billing", "info"), ("billing", "info", "-v"), ("billing", "trace"), ("billing", "schema")):
        result = dlt_cli(ws, env, *args)
        assert result.code == 0, result.output
        assert "differs from destination" not in result.output
        assert state_file(ws).read_bytes() == before, args
    # The destination named in the environment, as cron may set it, changes nothing either.
    assert dlt_cli(ws, {**env, "DESTINATION_TYPE": "duckdb"}, "billing", "info").code == 0
    assert state_file(ws).read_bytes() == before
    info = dlt_cli(ws, env, "billing", "info").stdout
    assert "destination_type: pipelines.warehouse.billing_duckdb" in info
    assert "kitchen_billing with 3 table(s)" in info and "fohlio_billing with 3 table(s)" in info

    # `show` needs dlt's `hub` extra, which the project does not install: it says so, does nothing.
    show = dlt_cli(ws, env, "billing", "show")
    assert show.code == 0 and "dlt[hub]" in show.output
    assert state_file(ws).read_bytes() == before

    again = billing_elt(ws, env, "load")
    assert again.code == 0, again.output
    assert "differs from destination" not in again.output


def test_the_trace_covers_every_provider_of_the_last_run(loaded):
    ws, env = loaded
    result = dlt_cli(ws, env, "billing", "trace")
    assert result.code == 0, result.output
    # kitchen, fohlio and the run's pipeline_runs row: extract, normalize, load and run each; and
    # the state-only load that counts Fohlio's first sweep done once its deletions are marked.
    assert "COMPLETED" in result.stdout and "with 14 steps" in result.stdout, result.stdout
    for table in ("invoices: 45 row(s)", "invoices: 60 row(s)", "pipeline_runs: 2 row(s)"):
        assert table in result.stdout

    trace = load_trace(str(ws.path / "pipelines" / "billing"))
    assert trace is not None
    infos: list[Any] = [step.step_info for step in trace.steps]
    steps = [step.step for step in trace.steps]
    full = ["extract", "normalize", "load", "run"]
    assert steps == [*full, *full, "normalize", "load", *full], steps
    # Each run's own package is in its provider's schema (the default schema carries dlt's state).
    runs = [
        {p.schema_name for p in info.load_packages} for step, info in zip(steps, infos, strict=True) if step == "run"
    ]
    assert "kitchen" in runs[0] and "fohlio" in runs[1] and "billing_runs" in runs[2], runs
    assert trace.started_at <= trace.steps[0].started_at
    assert trace.finished_at >= trace.steps[-1].finished_at
    normalized = sum(
        info.row_counts.get("invoices", 0) for step, info in zip(steps, infos, strict=True) if step == "normalize"
    )
    assert normalized == ws.scalar("SELECT count(*) FROM billing.invoices") == 105


def test_pipeline_dataset_reads_the_tables_from_the_warehouse_a_load_writes(loaded):
    ws, env = loaded
    script = (
        "import dlt, json\n"
        "p = dlt.attach('billing')\n"
        "ds = p.dataset()\n"
        "print(json.dumps({'arrow': ds.invoices.arrow().num_rows,"
        " 'sql': ds('SELECT provider, count(*) FROM invoice_items GROUP BY 1 ORDER BY 1').fetchall(),"
        " 'counts': dict(ds.row_counts().fetchall())}))\n"
    )
    # No DuckDB file configured: dlt's tools open the default `warehouse.duckdb`, as a load does
    # (not dlt's own default, `billing.duckdb`).
    environment = {k: v for k, v in ws.env(env).items() if k != "DESTINATION__DUCKDB__CREDENTIALS"}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ws.path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["arrow"] == ws.scalar("SELECT count(*) FROM billing.invoices") == 105
    assert [tuple(r) for r in got["sql"]] == counts(ws)["invoice_items"]
    assert got["counts"]["clients"] == 16 and got["counts"]["pipeline_runs"] == 2
    assert not (ws.path / "billing.duckdb").exists()


# --- drop -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("billing", "drop", "kitchen_billing"),
        ("billing", "drop", "--drop-all", "--schema", "fohlio"),
        ("billing", "drop", "re:.*_billing"),
    ],
)
def test_a_drop_of_one_provider_drops_no_shared_table_and_points_at_reset(loaded, args):
    ws, env = loaded
    before = counts(ws)
    assert {p for p, _ in before["invoices"]} == {"fohlio", "kitchen"}
    provider = "fohlio" if "fohlio" in args else "kitchen"

    result = dlt_cli(ws, env, *args)
    assert result.code != 0, result.output
    assert f"billing-elt reset {provider}" in result.output and "Nothing was dropped" in result.output
    assert counts(ws) == before
    working = ws.path / "pipelines" / "billing"
    assert not [p for p in (working / "normalize" / "extracted").iterdir()]  # nothing left pending
    assert not [p for p in (working / "load" / "normalized").iterdir()]

    # The pipeline goes on as before: the next load finds every row it loaded unchanged.
    again = billing_elt(ws, env, "load")
    assert again.code == 0, again.output
    summary = again.summary()
    assert summary["kitchen"]["invoices"] == "0" and summary["kitchen"]["unchanged"] == "45", again.output
    assert counts(ws) == before

    # What the refusal points at deletes that provider's rows only.
    reset = billing_elt(ws, env, "reset", provider)
    assert reset.code == 0, reset.output
    after = counts(ws)
    for table in TABLES:
        assert after[table] == [row for row in before[table] if row[0] != provider]


def test_the_run_log_in_its_own_schema_can_still_be_dropped(loaded):
    ws, env = loaded
    result = dlt_cli(ws, env, "billing", "drop", "--schema", "billing_runs", "pipeline_runs")
    assert result.code == 0, result.output
    tables = {r[0] for r in ws.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'billing'")}
    assert "pipeline_runs" not in tables and {"invoices", "invoice_items", "clients"} <= tables
