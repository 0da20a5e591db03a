"""The data checks through the real command line against the sandboxes (docs/checks.md): an account
gone stale, an API that answers empty pages, a field added to the payloads, a field the mapping
reads removed, and a rerun that records nothing new; each load names its failed checks and keeps
its own exit code, `billing-elt check` prints them and exits 4 on an error; `pipeline_runs.listed`
as each kind of listing gives it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox import fohlio, kitchen
from tests.support import Result, Workspace, serve

pytestmark = pytest.mark.integration

LIMIT_HOURS = "0.0005"  # 1.8 seconds: an account not loaded for longer is stale


def checks_of(workspace: Workspace, run_id: str) -> dict[str, tuple[str, bool, str]]:
    rows = workspace.query(
        "SELECT check_name, severity, passed, observed FROM billing.data_checks WHERE run_id = ?", run_id
    )
    return {name: (severity, passed, observed) for name, severity, passed, observed in rows}


def run_id_of(result: Result) -> str:
    for line in result.stderr.splitlines():
        if " · run " in line or " · check " in line:
            return line.split(" · run " if " · run " in line else " · check ")[1].split(" ")[0]
    raise AssertionError(f"no run id in:\n{result.output}")


def failed_checks(result: Result) -> list[str]:
    """The failed checks a load's summary names, or `billing-elt check` prints."""
    if " · check " in result.stderr:
        return [line for line in result.stdout.splitlines() if line.strip()]
    return [line.split(" INFO     ", 1)[1] for line in result.stderr.splitlines() if " INFO     " in line]


def schema_changes(workspace: Workspace) -> list[tuple[Any, ...]]:
    if not workspace.scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_changes'"):
        return []
    return workspace.query(
        "SELECT record_type, path, change, type_before, type_after, first_seen_run FROM billing.schema_changes "
        "ORDER BY path, first_seen_run"
    )


def touch_every_invoice(app: kitchen.KitchenApp, change: Any) -> None:
    """Change every invoice as the provider would, its `updated_at` moved (so the next load writes it)."""
    for invoice in app.invoices:
        change(invoice)
        app.update_invoice(invoice["id"])


def test_an_account_gone_stale_fails_freshness_naming_why_its_loads_fail(workspace: Workspace) -> None:
    app = kitchen.create_app()
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), "CHECKS__MAX_HOURS_SINCE_LOAD": LIMIT_HOURS}
        loaded = workspace.run(env)
        assert loaded.code == 0 and "checks: all 6 passed" in loaded.stderr, loaded.output
        # The workspace's key is revoked: every later load fails.
        app.inject("status", "/api/clients", times=None, status=401, body={"message": "Unauthenticated."})
        time.sleep(2.0)
        failed = workspace.run(env)
        assert failed.code == 1, failed.output  # the load's own exit code, whatever its checks say
        [stale] = failed_checks(failed)
        assert stale.startswith("kitchen [acme] freshness (error): kitchen [acme] was last loaded successfully")
        assert "past the 0.0005 h limit; its latest run failed" in stale and "401" in stale
        checked = workspace.run(env, "check")
    assert checked.code == 4, checked.output
    assert [line.split(":")[0] for line in failed_checks(checked)] == ["kitchen [acme] freshness (error)"]
    assert "billing-elt load --providers kitchen:acme" in checked.stdout
    severity, passed, observed = checks_of(workspace, run_id_of(checked))["freshness"]
    assert (severity, passed) == ("error", False) and observed.endswith("UTC")
    assert len(checks_of(workspace, run_id_of(checked))) == 6


def empty_page(app: kitchen.KitchenApp) -> dict[str, Any]:
    """Kitchen's page of invoices as it answers when it holds none."""
    return {
        "data": [],
        "links": {"first": "/api/invoices/?page=1", "last": "/api/invoices/?page=1", "prev": None, "next": None},
        "meta": {
            "current_page": 1,
            "from": None,
            "last_page": 1,
            "path": "/api/invoices",
            "per_page": 100,
            "to": None,
            "total": 0,
        },
    }


def test_an_api_that_answers_empty_pages_fails_volume(workspace: Workspace) -> None:
    app = kitchen.create_app()
    listed = len(app.invoices)
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run(env).code == 0
        app.inject("status", "/api/invoices", times=None, status=200, body=empty_page(app))
        guarded = workspace.run(env)  # the mass-delete guard refuses: exit 1, as before
        assert guarded.code == 1 and "--allow-mass-delete" in guarded.output
        [volume] = failed_checks(guarded)
        assert volume.startswith(
            f"kitchen [acme] volume (error): kitchen [acme] listed no invoice although its last 1 successful runs "
            f"listed a median of {listed}"
        )
        confirmed = workspace.run(env, "load", "--allow-mass-delete")  # a load that succeeded with nothing
        assert confirmed.code == 0, confirmed.output
        assert [line.split(":")[0] for line in failed_checks(confirmed)] == ["kitchen [acme] volume (error)"]
        checked = workspace.run(env, "check")
    assert checked.code == 4 and "volume (error)" in checked.stdout, checked.output
    runs = workspace.query(
        "SELECT status, invoices, listed FROM billing.pipeline_runs WHERE provider = 'kitchen' ORDER BY started_at"
    )
    assert runs == [("loaded", listed, listed), ("failed", 0, 0), ("loaded", 0, 0)]
    assert checks_of(workspace, run_id_of(checked))["volume"] == (
        "error",
        False,
        f"0 listed by run {run_id_of(confirmed)}",
    )


def test_a_field_added_is_recorded_once_and_warned_of_by_the_load_that_saw_it(workspace: Workspace) -> None:
    app = kitchen.create_app()
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run(env).code == 0
        first = app.invoices[0]
        app.update_invoice(first["id"], custom_fields={"po": "PO-1"})
        added = workspace.run(env)
        assert added.code == 0, added.output
        [warning] = failed_checks(added)
        assert warning.startswith("kitchen [acme] schema_drift (warning):") and "2 added" in warning
        checked = workspace.run(env, "check")
        assert checked.code == 0 and "schema_drift (warning)" in checked.stdout, checked.output
        again = workspace.run(env)  # the same payloads: nothing new
        assert again.code == 0 and "checks: all 6 passed" in again.stderr, again.output
    run = run_id_of(added)
    assert schema_changes(workspace) == [
        ("invoice", "$.custom_fields", "added", None, "object", run),
        ("invoice", "$.custom_fields.po", "added", None, "string", run),
    ]
    assert workspace.scalar("SELECT example_key FROM billing.schema_changes LIMIT 1") == first["id"]
    kept = workspace.scalar("SELECT raw->>'$.custom_fields.po' FROM billing.invoices WHERE invoice_id = ?", first["id"])
    assert kept == "PO-1"  # the new field is in raw

    # `reset` forgets the account's changes and baseline: the next load sets a new one, records nothing.
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run(env, "reset", "kitchen").code == 0
        assert schema_changes(workspace) == []
        assert workspace.run(env).code == 0
    assert schema_changes(workspace) == []


def test_a_field_the_mapping_reads_removed_is_an_error_until_it_comes_back(workspace: Workspace) -> None:
    app = kitchen.create_app()
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        assert workspace.run(env).code == 0
        noted = workspace.scalar("SELECT count(*) FROM billing.invoices WHERE notes IS NOT NULL")
        memos = {i["id"]: i["memo"] for i in app.invoices}
        touch_every_invoice(app, lambda invoice: invoice.pop("memo"))
        removed = workspace.run(env)
        assert removed.code == 0, removed.output  # the mapping copes: `notes` is now empty
        [error] = failed_checks(removed)
        assert error.startswith("kitchen [acme] schema_drift (error): kitchen [acme]: $.memo (invoice) vanished")
        assert "sources/kitchen/mapping.py" in error
        assert noted and workspace.scalar("SELECT count(*) FROM billing.invoices WHERE notes IS NOT NULL") == 0
        still = workspace.run(env, "check")
        assert still.code == 4 and "$.memo (invoice) vanished" in still.stdout, still.output
        assert workspace.run(env).code == 0 and workspace.run(env, "check").code == 4  # until it is back
        touch_every_invoice(app, lambda invoice: invoice.update(memo=memos[invoice["id"]]))
        back = workspace.run(env)
        checked = workspace.run(env, "check")
    assert [line.split(":")[0] for line in failed_checks(back)] == ["kitchen [acme] schema_drift (warning)"]
    assert checked.code == 0, checked.output
    assert [(p, c, r) for _, p, c, _, _, r in schema_changes(workspace)] == [
        ("$.memo", "vanished", run_id_of(removed)),
        ("$.memo", "added", run_id_of(back)),
    ]


def test_a_rerun_that_finds_nothing_changed_records_nothing_new(workspace: Workspace) -> None:
    app = kitchen.create_app()
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        first, second = workspace.run(env), workspace.run(env)
        checked = workspace.run(env, "check")
    for result in (first, second):
        assert result.code == 0 and "checks: all 6 passed" in result.stderr, result.output
    assert checked.code == 0 and checked.stdout == "", checked.output
    assert second.summary()["kitchen"]["invoices"] == "0"  # nothing rewritten ...
    assert schema_changes(workspace) == []  # ... nothing compared, nothing recorded
    runs = workspace.query(
        "SELECT invoices, listed FROM billing.pipeline_runs WHERE provider = 'kitchen' ORDER BY started_at"
    )
    assert runs == [(len(app.invoices), len(app.invoices))] * 1 + [(0, len(app.invoices))]  # every page was read
    assert workspace.scalar("SELECT count(DISTINCT run_id) FROM billing.data_checks") == 3
    assert workspace.scalar("SELECT count(*) FROM billing.data_checks WHERE NOT passed") == 0


def test_listed_is_known_only_from_a_complete_listing_of_an_incremental_provider(workspace: Workspace) -> None:
    app = fohlio.create_app()
    with serve(app) as server:
        env = app.pipeline_env(server.url)
        swept, incremental = workspace.run(env), workspace.run(env)
    assert swept.code == 0 and incremental.code == 0, incremental.output
    runs = workspace.query("SELECT listed FROM billing.pipeline_runs WHERE provider = 'fohlio' ORDER BY started_at")
    assert runs == [(app.summary()["invoices"],), (None,)]  # the first run sweeps; the second asks for changes
    assert checks_of(workspace, run_id_of(incremental))["volume"][1]  # compared with the sweep's, not with nothing


def test_check_before_any_load_and_with_a_wrong_setting(workspace: Workspace) -> None:
    nothing = workspace.run({}, "check")
    assert nothing.code == 0 and "nothing to check" in nothing.stderr, nothing.output
    assert not workspace.db.exists()
    wrong = workspace.run({"CHECKS__MAX_VOLUME_DROP": "2"}, "check")
    assert wrong.code == 2 and "CHECKS__MAX_VOLUME_DROP" in wrong.stderr, wrong.output
    misspelt = workspace.run({"CHECKS__MAX_HOURS_SINCE_LAOD": "2"}, "check")
    assert misspelt.code == 0 and 'unknown key "max_hours_since_laod" in [checks]' in misspelt.stderr
    assert 'did you mean "max_hours_since_load"?' in misspelt.stderr
    (workspace.path / ".dlt").mkdir()
    (workspace.path / ".dlt" / "config.toml").write_text("[checks]\nmax_volume_dorp = 0.3\n")
    in_toml = workspace.run({}, "check")
    assert in_toml.code == 0 and 'unknown key "max_volume_dorp" in [checks]' in in_toml.stderr, in_toml.output
    assert 'did you mean "max_volume_drop"?' in in_toml.stderr
