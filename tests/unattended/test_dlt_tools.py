"""dlt's own tools on a real two-provider load, through the real `dlt` command line: `info`,
`trace`, `schema` and `show` leave the pipeline's state as it was, the trace covers the whole
run, `pipeline.dataset()` reads the tables, and `drop` of one provider's resource refuses to
drop the tables every provider shares (docs/operations.md, "dlt's own tools")."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dlt.pipeline.trace import load_trace

from sandbox import fohlio, kitchen
from tests.browser import CHROMIUM, open_in_chromium
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
    outputs = {}
    for args in (("billing", "info", "-v"), ("billing", "schema")):
        result = dlt_cli(ws, env, *args)
        assert result.code == 0, result.output
        assert "differs from destination" not in result.output
        assert state_file(ws).read_bytes() == before, args
        outputs[args[1]] = result.stdout
    # The destination named in the environment, as cron may set it, changes nothing either.
    assert dlt_cli(ws, {**env, "DESTINATION_TYPE": "duckdb"}, "billing", "info").code == 0
    assert state_file(ws).read_bytes() == before
    info = outputs["info"]
    assert "destination_type: pipelines.warehouse.billing_duckdb" in info
    # invoices, invoice_items, clients and invoice_history
    assert "kitchen_billing with 4 table(s)" in info and "fohlio_billing with 4 table(s)" in info

    again = billing_elt(ws, env, "load")
    assert again.code == 0, again.output
    assert "differs from destination" not in again.output


# --- show: dlt's dashboard ---------------------------------------------------------------------

# What `dlt pipeline ... show` needs: dlt's `hub` extra (dlthub), marimo and ibis, all in the
# `dashboard` extra. Without them `show` only says what to install.
DASHBOARD_MISSING = [name for name in ("dlthub", "marimo", "ibis") if importlib.util.find_spec(name) is None]
needs_dashboard = pytest.mark.skipif(
    bool(DASHBOARD_MISSING),
    reason=f"dashboard test skipped: the `dashboard` extra is not installed (no {', '.join(DASHBOARD_MISSING)};"
    ' make install EXTRAS="... dashboard")',
)
# The one thing the dashboard's page fetches from elsewhere than the dashboard itself.
DASHBOARD_LOGO = "https://dlthub.com/docs/img/dlthub-logo.png"
# Every text node of the page, shadow roots included (marimo draws its tables in them), in order.
PAGE_TEXTS = """(() => { const out = [];
  const walk = (n) => { if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) { if (c.nodeType === 3) { const t = c.textContent.trim(); if (t) out.push(t); }
                                    else walk(c); } };
  walk(document.body); return out; })()"""
CLICK = """(() => { let done = false;
  const walk = (n) => { if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.children) { if (done) return;
      if (c.tagName === 'BUTTON' && c.innerText.trim() === %s) { c.click(); done = true; return; } walk(c); } };
  walk(document.body); return done; })()"""


def workspace_files(ws: Workspace) -> dict[str, str]:
    """Every file of the workspace (the DuckDB file and dlt's local state included) by its content."""
    return {
        str(p.relative_to(ws.path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ws.path.rglob("*"))
        if p.is_file()
    }


def contains_run(texts: list[str], *run: str) -> bool:
    return any(tuple(texts[i : i + len(run)]) == run for i in range(len(texts)))


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout}s")
        time.sleep(0.5)


@pytest.mark.skipif(not DASHBOARD_MISSING, reason="the `dashboard` extra is installed: `show` serves the dashboard")
def test_show_without_the_dashboard_extra_says_what_to_install(loaded):
    ws, env = loaded
    before = state_file(ws).read_bytes()
    show = dlt_cli(ws, env, "billing", "show")
    assert show.code == 0 and "dlt[hub]" in show.output
    assert state_file(ws).read_bytes() == before


@needs_dashboard
@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); dashboard test skipped"
)
def test_show_serves_the_dashboard_of_this_pipeline_and_changes_nothing(loaded, tmp_path_factory):
    ws, env = loaded
    outside = tmp_path_factory.mktemp("dashboard")  # the browsers' files, outside the workspace
    before = workspace_files(ws)
    rows = counts(ws)
    # marimo opens the dashboard in "the browser": here a program that only writes down the URL.
    opened = outside / "opened.txt"
    browser_program = outside / "browser"
    browser_program.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{opened}"\n')
    browser_program.chmod(0o755)
    environment = ws.env(
        {
            **env,
            # dlt starts `marimo` by name: the environment's own, as with an activated venv.
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "BROWSER": str(browser_program),
        }
    )
    show = subprocess.Popen(
        [str(BIN / "dlt"), "pipeline", "--pipelines-dir", str(ws.path / "pipelines"), "billing", "show"],
        cwd=ws.path,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        # marimo serves on the first free port from 2718 and opens the browser once it listens.
        wait_until(lambda: show.poll() is not None or (opened.exists() and opened.read_text().strip() != ""), "no URL")
        assert show.poll() is None, show.communicate()[0]
        url = opened.read_text().split()[0]
        assert url.startswith(("http://localhost:", "http://127.0.0.1:")), url

        browser, tools = open_in_chromium(url, outside / "profile")
        try:
            wait_until(lambda: "invoices" in tools.evaluate(PAGE_TEXTS), "the dashboard listed no table")
            texts = tools.evaluate(PAGE_TEXTS)
            assert contains_run(texts, "Pipeline", "billing"), texts
            # Its schemas (one per provider, and the run log's) and the tables of the first one.
            assert {"kitchen", "fohlio", "billing_runs"} <= set(texts), texts
            # Its write disposition as the last load set it: a first load appends, later ones merge.
            for table in TABLES:
                assert any(contains_run(texts, table, "kitchen_billing", d) for d in ("append", "merge")), texts

            # The tables' row counts and a query, read from the project's warehouse.
            assert tools.evaluate(CLICK % json.dumps("Load row counts"))
            wait_until(lambda: "row_count" in tools.evaluate(PAGE_TEXTS), "no row counts")
            texts = tools.evaluate(PAGE_TEXTS)
            for table in TABLES:
                total = sum(n for _, n in rows[table])
                assert contains_run(texts, table, str(total), "kitchen_billing"), (table, texts)
            assert tools.evaluate(CLICK % json.dumps("Run Query"))  # its example: SELECT * FROM "clients"
            clients = sum(n for _, n in rows["clients"])
            wait_until(
                lambda: any(t.startswith(f"{clients} rows, ") for t in tools.evaluate(PAGE_TEXTS)), "no query result"
            )
        finally:
            tools.ws.close()
            browser.terminate()
            browser.wait(timeout=30)

        assert not [e for e in tools.events if e.get("method") == "Runtime.exceptionThrown"], tools.events
        errors = [
            e["params"]["entry"]
            for e in tools.events
            if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
        ]
        assert all(entry.get("url") == DASHBOARD_LOGO for entry in errors), errors  # offline, the logo fails
        origin = url.split("/", 3)[:3]
        requests = {
            e["params"]["request"]["url"] for e in tools.events if e.get("method") == "Network.requestWillBeSent"
        }
        assert {u for u in requests if u.split("/", 3)[:3] != origin and not u.startswith("data:")} <= {DASHBOARD_LOGO}
    finally:
        if show.poll() is None:
            os.killpg(show.pid, signal.SIGINT)  # Ctrl-C: dlt and the marimo server it started
        try:
            output = show.communicate(timeout=60)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(show.pid, signal.SIGKILL)
            raise
    assert show.returncode == 0, output
    assert "dlt[hub]" not in output and "Running dlt_dashboard.py" in output, output
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)  # stopped with it
    assert opened.read_text().split() == [url]

    # Nothing of the pipeline changed: its state, its packages, the warehouse's bytes.
    assert workspace_files(ws) == before
    again = billing_elt(ws, env, "load")
    assert again.code == 0, again.output
    assert "differs from destination" not in again.output
    summary = again.summary()
    assert summary["kitchen"]["unchanged"] == "45" and summary["fohlio"]["status"] == "loaded", again.output
    assert counts(ws) == rows


def test_the_trace_covers_every_provider_of_the_last_run(loaded):
    ws, env = loaded
    result = dlt_cli(ws, env, "billing", "trace")
    assert result.code == 0, result.output
    # kitchen, its pipeline_runs row, fohlio and its row, the reference rates and the data checks:
    # extract, normalize, load and run each; and the state-only load that counts Fohlio's first
    # sweep done once its deletions are marked.
    assert "COMPLETED" in result.stdout and "with 26 steps" in result.stdout, result.stdout
    for table in ("invoices: 45 row(s)", "invoices: 60 row(s)", "pipeline_runs: 1 row(s)"):
        assert table in result.stdout

    trace = load_trace(str(ws.path / "pipelines" / "billing"))
    assert trace is not None
    infos: list[Any] = [step.step_info for step in trace.steps]
    steps = [step.step for step in trace.steps]
    full = ["extract", "normalize", "load", "run"]
    assert steps == [*full, *full, *full, "normalize", "load", *full, *full, *full], steps
    # Each run's own package is in its provider's schema (the default schema carries dlt's state).
    runs = [
        {p.schema_name for p in info.load_packages} for step, info in zip(steps, infos, strict=True) if step == "run"
    ]
    assert "kitchen" in runs[0] and "fohlio" in runs[2] and "billing_runs" in runs[1] & runs[3] & runs[5], runs
    assert "ecb" in runs[4], runs
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
