"""Progress survives failures (docs/operations.md, "Progress survives failures"): a long per-client
run commits in batches of clients, a failure late in the run keeps the batches before it, and the
next run lists documents only for the clients the interrupted sweep had not finished. Through
the real command line, into real DuckDB files: what only a whole run proves (each batch its own
committed load package, accounts extracted together in rounds). The sweep's own rules (a changed
filter, the update cursor, a client that cannot be listed) are proved at the driver's seam, in
tests/shared/test_sweep.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import invoicexpress
from sandbox.framework import App
from tests.support import Workspace, serve

pytestmark = pytest.mark.integration

CLIENTS, BATCH = 40, 10
DOCUMENTS = "/clients/{client_id}/invoices.json"
SNAPSHOT = "SELECT * EXCLUDE (raw), raw::VARCHAR FROM billing.{} ORDER BY ALL"
# Flow Payroll payloads carry a signed download link that changes with every request.
WITHOUT_RAW = "SELECT * EXCLUDE (raw) FROM billing.{} ORDER BY ALL"


def tables(ws: Workspace, sql: str = SNAPSHOT) -> dict[str, list[tuple[object, ...]]]:
    return {t: ws.query(sql.format(t)) for t in ("invoices", "invoice_items", "clients")}


def document_requests(app: App) -> list[str]:
    """The client ids whose documents were listed (one request per client at these sizes)."""
    return [e.path.split("/")[2] for e in app.log.entries() if e.path.endswith("/invoices.json")]


def clients_with_invoices(ws: Workspace) -> int:
    return int(ws.scalar("SELECT count(DISTINCT client_id) FROM billing.invoices"))


def ix_env(app: invoicexpress.InvoiceXpressSandbox, url: str, **extra: str) -> dict[str, str]:
    # One client in flight at a time, so that the fault lands after a known number of clients.
    return {**app.pipeline_env(url), "SOURCES__INVOICEXPRESS__CONCURRENCY": "1", "BATCH_CLIENTS": str(BATCH), **extra}


def test_a_fault_late_in_a_long_run_keeps_the_batches_and_the_next_run_fetches_only_the_rest(tmp_path: Path):
    app = invoicexpress.create_app(fixtures=False, clients=CLIENTS, requests_per_minute=None)
    with serve(app) as server:
        env = ix_env(app, server.url)
        clean = Workspace(tmp_path / "clean")
        clean.path.mkdir()
        assert clean.run(env).code == 0
        expected = tables(clean)
        assert len(set(document_requests(app))) == CLIENTS

        ws = Workspace(tmp_path / "faulty")
        ws.path.mkdir()
        app.log.clear()
        # The 36th client's listing fails for good (a 400 is not retried): 3 batches are complete.
        fault = app.inject("status", DOCUMENTS, method="POST", after=35, times=None, status=400)
        failed = ws.run(env)
        assert failed.code == 1, failed.stderr
        assert "Traceback" not in failed.stderr
        assert clients_with_invoices(ws) == 3 * BATCH
        assert failed.stderr.count("committing a batch of 10 client(s)") == 3, failed.stderr

        app.faults.remove(fault)
        app.log.clear()
        resumed = ws.run(env)
        assert resumed.code == 0, resumed.stderr
        assert "resuming the sweep started" in resumed.stderr
        assert "30 client(s) already done" in resumed.stderr
        fetched = document_requests(app)
        assert len(fetched) == CLIENTS - 3 * BATCH, fetched
        assert tables(ws) == expected

        # The sweep is complete: the next run is a new sweep over every client, and changes nothing.
        app.log.clear()
        again = ws.run(env)
        assert again.code == 0, again.stderr
        assert "resuming" not in again.stderr
        assert len(document_requests(app)) == CLIENTS
        assert tables(ws) == expected


def test_without_batches_a_failure_keeps_nothing_of_the_run(tmp_path: Path):
    app = invoicexpress.create_app(fixtures=False, clients=CLIENTS, requests_per_minute=None)
    with serve(app) as server:
        env = ix_env(app, server.url, BATCH_CLIENTS="0")
        ws = Workspace(tmp_path / "ws")
        ws.path.mkdir()
        fault = app.inject("status", DOCUMENTS, method="POST", after=35, times=None, status=400)
        assert ws.run(env).code == 1
        app.faults.remove(fault)
        app.log.clear()
        assert ws.run(env).code == 0
        assert len(document_requests(app)) == CLIENTS


def test_a_wrong_batch_size_is_a_usage_error(tmp_path: Path):
    app = invoicexpress.create_app(fixtures=False, clients=2)
    ws = Workspace(tmp_path / "ws")
    ws.path.mkdir()
    result = ws.run({**app.pipeline_env("http://127.0.0.1:9"), "BATCH_CLIENTS": "ten"})
    assert result.code == 2
    assert "batch_clients = 'ten' is not a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_several_accounts_extracted_together_commit_their_batches_in_rounds(tmp_path: Path):
    """Two InvoiceXpress accounts, `account_concurrency` 2: each round extracts the next batch of
    every account not finished; one failing keeps its earlier batches, the other loads in full."""
    acme = invoicexpress.create_app(fixtures=False, seed=1, clients=12, account_name="acme", requests_per_minute=None)
    beta = invoicexpress.create_app(
        fixtures=False, seed=2, clients=6, account_name="beta", api_key="ix-beta", requests_per_minute=None
    )
    with serve(acme) as a, serve(beta) as b:
        prefix = "SOURCES__INVOICEXPRESS__ACCOUNTS__BETA__"
        env = {
            **ix_env(acme, a.url),
            **{prefix + k.upper(): v for k, v in beta.config(b.url).items() if v is not None},
            prefix + "CONCURRENCY": "1",
            "BATCH_CLIENTS": "4",
            "ACCOUNT_CONCURRENCY": "2",
        }
        ws = Workspace(tmp_path / "ws")
        ws.path.mkdir()
        fault = acme.inject("status", DOCUMENTS, method="POST", after=9, times=None, status=400)
        failed = ws.run(env)
        assert failed.code == 1, failed.stderr
        per_account = dict(ws.query("SELECT account, count(DISTINCT client_id) FROM billing.invoices GROUP BY 1"))
        assert per_account == {"acme": 8, "beta": 6}
        acme.faults.remove(fault)
        acme.log.clear()
        beta.log.clear()
        result = ws.run(env)
        assert result.code == 0, result.stderr
        assert len(document_requests(acme)) == 4  # acme resumes; beta's sweep was complete
        assert len(document_requests(beta)) == 6
        for app, account in ((acme, "acme"), (beta, "beta")):
            expected = app.summary()
            got = ws.scalar("SELECT count(*) FROM billing.invoices WHERE account = ?", account)
            assert got == expected["invoices"]
