"""The Dagster definitions into Postgres, the throwaway cluster of tests/postgres/: two accounts,
each its own partition, run one after another and at once into one dataset."""

from __future__ import annotations

import pytest

from tests.orchestration.support import SKIP, expected, run_at_once, two_accounts
from tests.postgres.cluster import Database

pytest.importorskip("dagster", reason=SKIP)

from tests.orchestration.materialize import failure, materialize_one, metadata

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def pg_env(clean_env, pg_database: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    for name, value in pg_database.env().items():
        monkeypatch.setenv(name, value)
    return pg_database


def counts(db: Database, account: str) -> tuple[int, ...]:
    return tuple(
        db.scalar(f"SELECT count(*) FROM billing.{t} WHERE provider = 'kitchen' AND account = %s", account)
        for t in ("invoices", "invoice_items", "clients")
    )


def schemas(db: Database) -> set[str]:
    return {r[0] for r in db.query("SELECT schema_name FROM information_schema.schemata")}


def test_two_accounts_land_in_postgres_each_in_its_own_pipeline_and_staging(pg_env, monkeypatch):
    db = pg_env
    with two_accounts(monkeypatch) as (acme, eu, _env):
        first = materialize_one("kitchen:acme")
        second = materialize_one("kitchen:eu")
    assert first.success and second.success
    assert counts(db, "acme") == expected(acme)
    assert counts(db, "acme-eu") == expected(eu)

    meta = {"acme": metadata(first), "acme-eu": metadata(second)}
    for account, app in (("acme", acme), ("acme-eu", eu)):
        assert meta[account]["status"] == "loaded"
        assert meta[account]["account"] == account
        assert (meta[account]["invoices"], meta[account]["invoice_items"], meta[account]["clients"]) == expected(app)
        assert meta[account]["unmapped"] == 0
        assert meta[account]["history_rows"] == expected(app)[0]  # every invoice's first state
        assert meta[account]["destination"].startswith("postgres postgresql://billing@127.0.0.1:")
        assert "throwaway" not in meta[account]["destination"]  # never the password
    runs = db.query("SELECT run_id, account, status, invoices FROM billing.pipeline_runs ORDER BY account")
    assert runs == [
        (meta["acme"]["run_id"], "acme", "loaded", expected(acme)[0]),
        (meta["acme-eu"]["run_id"], "acme-eu", "loaded", expected(eu)[0]),
    ]
    # Each account its own dlt pipeline (state) and staging dataset; nothing shares `billing_staging`.
    pipelines = {r[0] for r in db.query("SELECT DISTINCT pipeline_name FROM billing._dlt_pipeline_state")}
    assert pipelines == {"billing_kitchen_acme", "billing_kitchen_eu"}
    assert {"billing_staging_kitchen_acme", "billing_staging_kitchen_eu"} <= schemas(db)
    assert "billing_staging" not in schemas(db)

    # The next night each account reads only what changed in it, from its own cursor.
    with two_accounts(monkeypatch) as (acme, eu, _env):
        eu.update_invoice(eu.invoices[0]["id"], memo="changed in the EU workspace")
        again_acme, again_eu = materialize_one("kitchen:acme"), materialize_one("kitchen:eu")
    assert metadata(again_acme)["invoices"] == 0 and metadata(again_acme)["unchanged"] == expected(acme)[0]
    assert metadata(again_eu)["invoices"] == 1
    # A memo is not a state the history keeps: the rewritten invoice adds no history row.
    assert metadata(again_acme)["history_rows"] == 0 and metadata(again_eu)["history_rows"] == 0
    assert counts(db, "acme") == expected(acme) and counts(db, "acme-eu") == expected(eu)


def test_a_failing_account_fails_only_its_partition_with_its_one_paragraph(pg_env, monkeypatch):
    db = pg_env
    with two_accounts(monkeypatch) as (acme, _eu, _env):
        monkeypatch.setenv("SOURCES__KITCHEN__ACCOUNTS__EU__API_KEY", "not-the-key-27182818")
        good = materialize_one("kitchen:acme")
        bad = materialize_one("kitchen:eu")
    assert good.success
    assert not bad.success
    message = failure(bad)
    assert message.startswith("kitchen [acme-eu]")
    assert "SOURCES__KITCHEN__ACCOUNTS__EU__API_KEY" in message
    assert "not-the-key-27182818" not in message and "Traceback" not in message
    assert len(message.splitlines()) == 1
    assert counts(db, "acme") == expected(acme)
    assert counts(db, "acme-eu") == (0, 0, 0)
    statuses = db.query("SELECT account, status FROM billing.pipeline_runs ORDER BY account")
    assert statuses == [("acme", "loaded"), ("acme-eu", "failed")]


def test_two_accounts_started_at_once_into_one_postgres_dataset_both_land(pg_env, monkeypatch):
    db = pg_env
    with two_accounts(monkeypatch, latency=0.2) as (acme, eu, _env):
        ran = run_at_once(["kitchen:acme", "kitchen:eu"])
    for key, one in ran.items():
        assert one.code == 0, f"{key}: {one.result}\n{one.stderr[-3000:]}"
        assert one.result["status"] == "loaded"
    assert counts(db, "acme") == expected(acme)
    assert counts(db, "acme-eu") == expected(eu)
