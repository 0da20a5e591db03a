"""The real pipeline, through real HTTP, against the InvoiceXpress sandbox, into a real DuckDB file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from sandbox.invoicexpress import create_app
from tests.support import Workspace, serve

pytestmark = pytest.mark.integration

SNAPSHOT = {
    "invoices": "SELECT * EXCLUDE (raw), raw::VARCHAR FROM billing.invoices ORDER BY invoice_id",
    "invoice_items": "SELECT * EXCLUDE (raw), raw::VARCHAR FROM billing.invoice_items ORDER BY invoice_id, line_number",
    "clients": "SELECT * EXCLUDE (raw), raw::VARCHAR FROM billing.clients ORDER BY client_id",
}


def snapshot(ws: Workspace) -> dict[str, list[tuple]]:
    return {table: ws.query(sql) for table, sql in SNAPSHOT.items()}


def loaded_totals(ws: Workspace) -> dict[str, Decimal]:
    return dict(ws.query("SELECT currency, sum(total) FROM billing.invoices GROUP BY 1 ORDER BY 1"))


def assert_matches_sandbox(ws: Workspace, app) -> None:
    expected = app.summary()
    assert ws.scalar("SELECT count(*) FROM billing.invoices") == expected["invoices"]
    assert ws.scalar("SELECT count(*) FROM billing.invoice_items") == expected["lines"]
    assert ws.scalar("SELECT count(*) FROM billing.clients") == expected["clients"]
    assert loaded_totals(ws) == expected["totals"]


def assert_invariants(ws: Workspace) -> None:
    for table, key in [
        ("invoices", "invoice_id"),
        ("invoice_items", "invoice_id, line_number"),
        ("clients", "client_id"),
    ]:
        dupes = ws.scalar(
            f"SELECT count(*) FROM (SELECT provider, account, {key} FROM billing.{table} "
            "GROUP BY ALL HAVING count(*) > 1)"
        )
        assert dupes == 0, table
    assert ws.scalar("SELECT count(*) FROM billing.invoices WHERE NOT regexp_full_match(currency, '[A-Z]{3}')") == 0
    assert (
        ws.scalar(
            "SELECT count(*) FROM billing.invoices WHERE status NOT IN "
            "('draft','open','partially_paid','paid','void','uncollectible')"
        )
        == 0
    )
    assert (
        ws.scalar(
            "SELECT count(*) FROM billing.invoice_items i ANTI JOIN billing.invoices v "
            "USING (provider, account, invoice_id)"
        )
        == 0
    )
    assert (
        ws.scalar(
            "SELECT count(*) FROM billing.invoices WHERE "
            "abs(subtotal + tax_total + shipping_total - withholding_total - total) > 0.01"
        )
        == 0
    )
    assert ws.scalar("SELECT count(*) FROM billing.invoice_items WHERE _tombstone") == 0


@pytest.mark.sockets  # real sockets and a subprocess, as a user runs it
def test_full_load_is_exact_and_a_rerun_changes_nothing(workspace):
    app = create_app(clients=15, invoices_per_client=35)  # several pages per client at the default per_page
    with serve(app) as server:
        first = workspace.run(app.pipeline_env(server.url))
        assert first.code == 0, first.output
        assert_matches_sandbox(workspace, app)
        assert_invariants(workspace)
        types = {
            r[0]
            for r in workspace.query(
                "SELECT DISTINCT data_type FROM information_schema.columns "
                "WHERE table_name = 'invoices' AND column_name = 'total'"
            )
        }
        assert types == {"DECIMAL(18,6)"}
        assert workspace.scalar("SELECT json_type(raw) FROM billing.invoices LIMIT 1") == "OBJECT"
        before = snapshot(workspace)

        second = workspace.run(app.pipeline_env(server.url))
        assert second.code == 0, second.output
        assert snapshot(workspace) == before
    assert "Summary" in first.stderr and "invoicexpress" in first.stderr and "loaded" in first.stderr


def test_a_status_change_and_a_removed_line_show_after_the_next_run(workspace):
    app = create_app(clients=3, invoices_per_client=6, lines_per_invoice=(3, 4))
    target = app.all_invoices()[4]
    invoice_id = target["id"]
    with serve(app) as server:
        assert workspace.run(app.pipeline_env(server.url)).code == 0
        lines_before = workspace.scalar(
            "SELECT count(*) FROM billing.invoice_items WHERE invoice_id = ?", str(invoice_id)
        )
        assert lines_before == len(target["items"])

        app.update_invoice(invoice_id, status="canceled")
        app.remove_line(invoice_id, 0)
        result = workspace.run(app.pipeline_env(server.url))
        assert result.code == 0, result.output

    status, provider_status, balance = workspace.query(
        "SELECT status, provider_status, balance_due FROM billing.invoices WHERE invoice_id = ?", str(invoice_id)
    )[0]
    assert (status, provider_status, balance) == ("void", "canceled", Decimal(0))
    lines = workspace.query(
        "SELECT line_number, name FROM billing.invoice_items WHERE invoice_id = ? ORDER BY 1", str(invoice_id)
    )
    assert [n for n, _ in lines] == list(range(1, lines_before))
    assert [name for _, name in lines] == [item["name"] for item in target["items"][1:]]
    assert_matches_sandbox(workspace, app)


def test_a_wrong_key_fails_clearly_without_leaking_it(workspace):
    app = create_app(clients=2, invoices_per_client=2)
    env_wrong = {"SOURCES__INVOICEXPRESS__API_KEY": "wrong-key-7c1e55aa90"}
    with serve(app) as server:
        result = workspace.run({**app.pipeline_env(server.url), **env_wrong})
    assert result.code == 1
    assert "invoicexpress [sandbox]" in result.stderr
    assert "401" in result.stderr and "Invalid API key" in result.stderr
    assert "SOURCES__INVOICEXPRESS__API_KEY" in result.stderr
    assert "Traceback" not in result.output
    assert "wrong-key-7c1e55aa90" not in result.output
    assert (
        not workspace.db.exists()
        or workspace.scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'invoices'") == 0
    )
    leaked = [p for p in Path(workspace.path).rglob("*") if p.is_file() and b"wrong-key-7c1e55aa90" in p.read_bytes()]
    assert leaked == []


def test_the_key_never_reaches_logs_or_dlt_traces_even_in_verbose_mode(workspace):
    app = create_app(clients=2, invoices_per_client=2)
    with serve(app) as server:
        result = workspace.run({**app.pipeline_env(server.url), "RUNTIME__LOG_LEVEL": "DEBUG", "BILLING_VERBOSE": "1"})
    assert result.code == 0, result.output
    assert app.api_key not in result.output
    leaked = [p for p in Path(workspace.path).rglob("*") if p.is_file() and app.api_key.encode() in p.read_bytes()]
    assert leaked == []


def test_a_client_that_disappears_is_skipped_and_reported(workspace):
    app = create_app(clients=4, invoices_per_client=3)
    app.delete_client(1310177, listed=True)
    with serve(app) as server:
        result = workspace.run(app.pipeline_env(server.url))
    assert result.code == 0, result.output
    assert "skipped 1 — client not found (HTTP 404) when listing its documents (e.g. 1310177)" in result.stderr
    assert workspace.scalar("SELECT count(*) FROM billing.invoices WHERE client_id = '1310177'") == 0
    assert_matches_sandbox(workspace, app)


def test_rate_limited_requests_are_retried_and_nothing_is_lost(workspace):
    app = create_app(clients=6, invoices_per_client=4, requests_per_minute=4, budget_window=0.5)
    env = {**app.pipeline_env(""), "SOURCES__INVOICEXPRESS__REQUESTS_PER_MINUTE": "0"}
    with serve(app) as server:
        env["SOURCES__INVOICEXPRESS__BASE_URL"] = server.url
        result = workspace.run(env)
        throttled = app.log.count(status=429)
    assert result.code == 0, result.output
    assert throttled > 0
    assert_matches_sandbox(workspace, app)


def test_the_proactive_budget_avoids_429s(workspace):
    app = create_app(clients=6, invoices_per_client=4, requests_per_minute=10, budget_window=1.0)
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), "SOURCES__INVOICEXPRESS__REQUESTS_PER_MINUTE": "540"}  # 9 per second
        result = workspace.run(env)
        assert app.log.count(status=429) == 0
    assert result.code == 0, result.output
    assert_matches_sandbox(workspace, app)


def test_client_ids_restrict_the_load(workspace):
    app = create_app(clients=5, invoices_per_client=3)
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), "SOURCES__INVOICEXPRESS__CLIENT_IDS": '["1310178", "1310180"]'}
        assert workspace.run(env).code == 0
    assert {r[0] for r in workspace.query("SELECT DISTINCT client_id FROM billing.invoices")} == {"1310178", "1310180"}
    assert workspace.scalar("SELECT count(*) FROM billing.clients") == 2


@pytest.mark.sockets  # real sockets and a subprocess, as a user runs it
def test_an_interrupted_run_followed_by_a_normal_run_equals_one_clean_run(workspace, tmp_path):
    app = create_app(clients=40, invoices_per_client=12, latency=0.02)
    with serve(app) as server:
        env = workspace.env(app.pipeline_env(server.url))
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.billing"],
            cwd=workspace.path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while app.log.count(path_prefix="/clients/") < 15 and time.time() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        app.latency = 0
        result = workspace.run(app.pipeline_env(server.url))
        assert result.code == 0, result.output
        interrupted_then_normal = snapshot(workspace)

        clean = Workspace(tmp_path / "clean")
        clean.path.mkdir()
        assert clean.run(app.pipeline_env(server.url)).code == 0
    assert interrupted_then_normal == snapshot(clean)
    assert_invariants(workspace)


def test_a_base_url_that_is_not_the_api_is_a_clear_error(workspace):
    app = create_app()
    portal = create_app()  # something that answers HTTP but is not the API (a captive portal, a wrong base_url)
    portal.inject("not_json", times=None, body=b"<html><body>Welcome to the portal</body></html>")
    with serve(portal) as server:
        result = workspace.run(app.pipeline_env(server.url))
    assert result.code == 1
    assert "not JSON" in result.stderr and "text/html" in result.stderr and "base_url" in result.stderr
    assert "Traceback" not in result.output and app.api_key not in result.output


def test_an_unreachable_api_is_a_clear_error(workspace):
    app = create_app()
    env = {**app.pipeline_env("http://127.0.0.1:9"), "SOURCES__INVOICEXPRESS__BASE_URL": "http://127.0.0.1:9"}
    result = workspace.run(env)
    assert result.code == 1
    assert "could not reach" in result.stderr and "invoicexpress [sandbox]" in result.stderr
    assert "Traceback" not in result.output and app.api_key not in result.output


def test_nothing_configured_says_how_to_configure(workspace):
    result = workspace.run({})
    assert result.code == 2
    assert "no provider is configured" in result.stderr and "make demo" in result.stderr
    assert "SOURCES__INVOICEXPRESS__API_KEY" in result.stderr


def test_an_unknown_provider_name_is_an_error(workspace):
    result = workspace.run({"PROVIDERS": "invoicexpress,nope"})
    assert result.code == 2 and "unknown provider(s): nope" in result.stderr


def test_a_selected_provider_without_secrets_fails_the_run(workspace):
    app = create_app(clients=1, invoices_per_client=1)
    with serve(app) as server:
        env = {k: v for k, v in app.pipeline_env(server.url).items() if not k.endswith("API_KEY")}
        result = workspace.run({**env, "PROVIDERS": "invoicexpress"})
    assert result.code == 2
    assert "SOURCES__INVOICEXPRESS__API_KEY" in result.stderr


def test_reset_forgets_the_provider_rows(workspace):
    app = create_app(clients=2, invoices_per_client=2)
    with serve(app) as server:
        assert workspace.run(app.pipeline_env(server.url)).code == 0
        result = workspace.run(app.pipeline_env(server.url), "reset", "invoicexpress")
        assert result.code == 0, result.output
        assert workspace.scalar("SELECT count(*) FROM billing.invoices") == 0
        assert workspace.run(app.pipeline_env(server.url)).code == 0
    assert_matches_sandbox(workspace, app)
