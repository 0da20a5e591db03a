"""The Dagster definitions into a DuckDB warehouse: one writer at a time, by turns, never a
failed or corrupted run because another account was writing (orchestration/accounts.py)."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import pytest

from tests.orchestration.support import SKIP, expected, run_at_once, two_accounts

pytest.importorskip("dagster", reason=SKIP)

from orchestration import accounts
from orchestration.definitions import WRITER_TAG, billing_job, defs
from pipelines.lock import RunLock
from pipelines.warehouse import read_only
from tests.orchestration.materialize import materialize_one, metadata

pytestmark = pytest.mark.integration


def counts(db: Path, account: str) -> tuple[int, ...]:
    with read_only(db) as con:
        return tuple(
            con.execute(
                f"SELECT count(*) FROM billing.{t} WHERE provider = 'kitchen' AND account = ?", [account]
            ).fetchone()[0]  # type: ignore[index]
            for t in ("invoices", "invoice_items", "clients")
        )


def test_two_accounts_load_into_duckdb_with_their_summary_as_metadata(clean_env, monkeypatch):
    db = clean_env / "warehouse.duckdb"
    with two_accounts(monkeypatch) as (acme, eu, _env):
        first = materialize_one("kitchen:acme")
        second = materialize_one("kitchen:eu")
    assert first.success and second.success
    assert counts(db, "acme") == expected(acme)
    assert counts(db, "acme-eu") == expected(eu)
    meta = metadata(second)
    assert meta["status"] == "loaded" and meta["account"] == "acme-eu"
    assert (meta["invoices"], meta["invoice_items"], meta["clients"]) == expected(eu)
    assert meta["unmapped"] == 0 and meta["pipeline_name"] == "billing_kitchen_eu"
    # Every invoice's first state is new history; it is in the warehouse under this run's id.
    assert meta["history_rows"] == expected(eu)[0] and metadata(first)["history_rows"] == expected(acme)[0]
    with read_only(db) as con:
        kept = con.execute("SELECT count(*) FROM billing.invoice_history WHERE run_id = ?", [meta["run_id"]]).fetchone()
    assert kept == (expected(eu)[0],)
    assert meta["destination"] == f"duckdb {db}"
    with read_only(db) as con:
        runs = con.execute("SELECT run_id, account, status FROM billing.pipeline_runs ORDER BY account").fetchall()
        schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert runs == [(metadata(first)["run_id"], "acme", "loaded"), (meta["run_id"], "acme-eu", "loaded")]
    # Each account its own local state and lock; the DuckDB file never gets a staging dataset per
    # account (its writers take turns: every merge, the history's included, uses `billing_staging`).
    assert (clean_env / "pipelines" / "billing_kitchen_acme" / "state.json").is_file()
    assert (clean_env / "pipelines" / "billing_kitchen_eu" / "state.json").is_file()
    assert not any(s.startswith("billing_staging_") for s in schemas)


def test_runs_into_duckdb_carry_the_tag_that_dagster_yaml_limits_to_one(clean_env):
    from dagster import DagsterInstance

    assert defs.resolve_job_def(billing_job.name).tags[WRITER_TAG] == "duckdb"
    home = clean_env / "dagster_home"
    home.mkdir()
    shutil.copy(Path(accounts.__file__).parent / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits  # type: ignore[union-attr]
    assert {"key": WRITER_TAG, "value": "duckdb", "limit": 1} in limits


def test_an_account_waits_for_its_turn_while_another_writes_the_file(clean_env, monkeypatch):
    db = clean_env / "warehouse.duckdb"
    lock_path = accounts.writers_lock_path()
    assert lock_path is not None and lock_path == db.with_name("warehouse.duckdb.writers.lock.run")
    other = RunLock(lock_path)
    other.acquire("dagster run of another account")
    waiting = threading.Event()
    said: list[str] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())
            if "waits for its turn" in record.getMessage():
                waiting.set()

    def release_when_waited() -> None:
        waiting.wait(timeout=120)
        other.release()

    seen = Seen()
    logging.getLogger("billing.run").addHandler(seen)
    releaser = threading.Thread(target=release_when_waited)
    releaser.start()
    try:
        with two_accounts(monkeypatch) as (acme, _eu, _env):
            result = materialize_one("kitchen:acme")
    finally:
        waiting.set()
        releaser.join()
        logging.getLogger("billing.run").removeHandler(seen)
    assert result.success
    assert counts(db, "acme") == expected(acme)
    assert any("waits for its turn" in m and "dagster run of another account is writing it" in m for m in said)
    assert any("has its turn on the DuckDB warehouse" in m for m in said)


def test_two_runs_started_at_once_into_one_duckdb_file_both_load(clean_env, monkeypatch):
    db = clean_env / "warehouse.duckdb"
    with two_accounts(monkeypatch, latency=0.2) as (acme, eu, _env):
        ran = run_at_once(["kitchen:acme", "kitchen:eu"])
    for key, one in ran.items():
        assert one.code == 0, f"{key}: {one.result}\n{one.stderr[-3000:]}"
        assert one.result["status"] == "loaded"
    assert counts(db, "acme") == expected(acme)
    assert counts(db, "acme-eu") == expected(eu)
    assert any("waits for its turn" in one.stderr for one in ran.values())
