"""Several accounts of one provider (docs/configuration.md, "Several accounts of one provider"),
through the real command line: each account its rows, state, outcome and reset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sandbox import kitchen
from tests.support import Result, Workspace, serve

pytestmark = pytest.mark.integration

EU_KEY = "kt_sandbox_eu_7c1d0e55aa"


def account_env(app: kitchen.KitchenApp, url: str, label: str) -> dict[str, str]:
    """The environment of a further Kitchen account `[sources.kitchen.accounts.<label>]`."""
    prefix = f"SOURCES__KITCHEN__ACCOUNTS__{label.upper()}__"
    return {prefix + key.upper(): value for key, value in app.config(url).items() if value is not None}


def summary_rows(result: Result) -> dict[tuple[str, str], dict[str, str]]:
    """The summary table keyed by (provider, account)."""
    lines = result.summary()  # asserts there is a summary
    assert lines
    rows: dict[tuple[str, str], dict[str, str]] = {}
    text = [line.split(" ", 2)[-1] for line in result.stderr.splitlines()]
    start = max(i for i, line in enumerate(text) if line.startswith("Summary"))
    header = text[start + 1].split()
    for line in text[start + 2 :]:
        if line.startswith(" ") or not line.strip():
            continue
        cells = dict(zip(header, line.split(), strict=False))
        rows[(cells["provider"], cells["account"])] = cells
    return rows


def counts(ws: Workspace, account: str) -> tuple[int, int, int]:
    return tuple(
        ws.scalar(f"SELECT count(*) FROM billing.{t} WHERE provider = 'kitchen' AND account = ?", account)
        for t in ("invoices", "invoice_items", "clients")
    )


def expected(app: kitchen.KitchenApp) -> tuple[int, int, int]:
    s = app.summary()
    return s["invoices"], s["lines"], s["clients"]


@contextmanager
def two_workspaces() -> Iterator[tuple[kitchen.KitchenApp, kitchen.KitchenApp, dict[str, str]]]:
    """Workspace `acme` in the base stanza and `acme-eu` as account `eu`, each its own sandbox."""
    acme = kitchen.create_app(seed=1, workspace="acme")
    eu = kitchen.create_app(seed=2, workspace="acme-eu", api_key=EU_KEY, clients=5, invoices=30)
    with serve(acme) as a, serve(eu) as e:
        yield acme, eu, {**acme.pipeline_env(a.url), **account_env(eu, e.url, "eu")}


def test_two_workspaces_load_side_by_side_each_with_its_own_rows_and_state(workspace):
    with two_workspaces() as (acme, eu, env):
        first = workspace.run(env)
        assert first.code == 0, first.output
        rows = summary_rows(first)
        assert rows[("kitchen", "acme")]["status"] == "loaded"
        assert rows[("kitchen", "acme-eu")]["status"] == "loaded"
        assert counts(workspace, "acme") == expected(acme)
        assert counts(workspace, "acme-eu") == expected(eu)
        runs = workspace.query(
            "SELECT account, status, invoices FROM billing.pipeline_runs WHERE provider = 'kitchen' ORDER BY account"
        )
        assert runs == [("acme", "loaded", expected(acme)[0]), ("acme-eu", "loaded", expected(eu)[0])]

        # Each account's cursor: a change in one workspace is the only invoice rewritten.
        eu.update_invoice(eu.invoices[0]["id"], memo="changed in the EU workspace")
        again = workspace.run(env)
        assert again.code == 0, again.output
        rows = summary_rows(again)
        assert rows[("kitchen", "acme")]["invoices"] == "0"
        assert rows[("kitchen", "acme-eu")]["invoices"] == "1"
        assert rows[("kitchen", "acme")]["unchanged"] == f"{expected(acme)[0]:,}"


def test_one_account_with_a_wrong_key_fails_and_the_other_loads(workspace):
    with two_workspaces() as (acme, _eu, env):
        env["SOURCES__KITCHEN__ACCOUNTS__EU__API_KEY"] = "not-the-key-27182818"
        result = workspace.run(env)
    assert result.code == 1, result.output
    rows = summary_rows(result)
    assert rows[("kitchen", "acme")]["status"] == "loaded"
    assert rows[("kitchen", "acme-eu")]["status"] == "failed"
    assert counts(workspace, "acme") == expected(acme)
    assert counts(workspace, "acme-eu")[0] == 0
    assert "kitchen [acme-eu]" in result.stderr
    assert "SOURCES__KITCHEN__ACCOUNTS__EU__API_KEY" in result.stderr
    assert "not-the-key-27182818" not in result.output
    statuses = workspace.query(
        "SELECT account, status FROM billing.pipeline_runs WHERE provider = 'kitchen' ORDER BY account"
    )
    assert statuses == [("acme", "loaded"), ("acme-eu", "failed")]


def test_one_account_at_a_time_fails_alone_too(workspace):
    with two_workspaces() as (acme, _eu, env):
        env["SOURCES__KITCHEN__ACCOUNTS__EU__API_KEY"] = "not-the-key-27182818"
        result = workspace.run({**env, "ACCOUNT_CONCURRENCY": "1"})
    assert result.code == 1, result.output
    rows = summary_rows(result)
    assert rows[("kitchen", "acme")]["status"] == "loaded" and rows[("kitchen", "acme-eu")]["status"] == "failed"
    assert counts(workspace, "acme") == expected(acme)


def test_providers_selects_one_account_and_reset_forgets_only_that_one(workspace):
    with two_workspaces() as (acme, eu, env):
        only = workspace.run({**env, "PROVIDERS": "kitchen:eu"})
        assert only.code == 0, only.output
        assert set(summary_rows(only)) == {("kitchen", "acme-eu")}
        assert acme.log.count() == 0
        assert counts(workspace, "acme") == (0, 0, 0)
        assert counts(workspace, "acme-eu") == expected(eu)

        # The base stanza is named by its workspace.
        base = workspace.run({**env, "PROVIDERS": "kitchen:acme"})
        assert base.code == 0, base.output
        assert set(summary_rows(base)) == {("kitchen", "acme")}
        assert counts(workspace, "acme") == expected(acme)

        reset = workspace.run(env, "reset", "kitchen:eu")
        assert reset.code == 0, reset.output
        assert counts(workspace, "acme-eu") == (0, 0, 0)
        assert counts(workspace, "acme") == expected(acme)

        both = workspace.run(env)
        assert both.code == 0, both.output
        rows = summary_rows(both)
        assert rows[("kitchen", "acme-eu")]["invoices"] == f"{expected(eu)[0]:,}"  # started over
        assert rows[("kitchen", "acme")]["invoices"] == "0"  # its cursor survived the reset
    assert counts(workspace, "acme-eu") == expected(eu)


def test_accounts_in_toml_stanzas_load_too(workspace):
    acme = kitchen.create_app(seed=1, workspace="acme")
    eu = kitchen.create_app(seed=2, workspace="acme-eu", api_key=EU_KEY, clients=5, invoices=30)
    with serve(acme) as a, serve(eu) as e:
        dot = workspace.path / ".dlt"
        dot.mkdir()
        (dot / "config.toml").write_text(
            f'[sources.kitchen]\nworkspace = "acme"\nbase_url = "{a.url}/api"\n\n'
            f'[sources.kitchen.accounts.eu]\nworkspace = "acme-eu"\nbase_url = "{e.url}/api"\n'
        )
        (dot / "secrets.toml").write_text(
            f'[sources.kitchen]\napi_key = "{acme.api_key}"\n\n[sources.kitchen.accounts.eu]\napi_key = "{EU_KEY}"\n'
        )
        result = workspace.run()
    assert result.code == 0, result.output
    assert counts(workspace, "acme") == expected(acme)
    assert counts(workspace, "acme-eu") == expected(eu)


@pytest.mark.parametrize(
    "extra, says",
    [
        ({"SOURCES__KITCHEN__ACCOUNTS__E-U__API_KEY": "x"}, "account label"),
        ({"PROVIDERS": "kitchen:nope"}, "has no account 'nope'"),
        ({"PROVIDERS": "kitchen:Bad!"}, "does not name an account"),
        ({"SOURCES__KITCHEN__ACCOUNTS__TWIN__WORKSPACE": "acme"}, "would mix"),
    ],
)
def test_a_bad_label_or_a_duplicate_account_is_a_usage_error(workspace, extra, says):
    with two_workspaces() as (acme, eu, env):
        result = workspace.run({**env, **extra})
    assert result.code == 2, result.output
    assert says in result.stderr
    assert acme.log.count() == 0 and eu.log.count() == 0


def test_an_account_stanza_missing_its_key_does_not_borrow_the_base_one(workspace):
    with two_workspaces() as (acme, eu, env):
        del env["SOURCES__KITCHEN__ACCOUNTS__EU__API_KEY"]
        result = workspace.run(env)
    assert result.code == 1, result.output
    assert "SOURCES__KITCHEN__ACCOUNTS__EU__API_KEY" in result.stderr
    assert summary_rows(result)[("kitchen", "acme-eu")]["status"] == "failed"
    assert counts(workspace, "acme") == expected(acme)
    assert eu.log.count() == 0
