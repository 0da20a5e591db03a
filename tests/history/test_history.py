"""`invoice_history` and the views on it, through the real command line against the sandboxes,
with the runs dated days apart (tests/history/conftest.py): what each run saw is kept, once,
dated by that run; nothing is added by a rerun, a remap or an unchanged listing; the views give
what the history says, computed again in Python (tests/history/reference.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from pipelines import history as pipelines_history
from sandbox import fohlio, invoicexpress, kitchen
from tests.history.conftest import Clock, month_start, utc
from tests.history.reference import (
    BUCKETS,
    Key,
    State,
    expected_history,
    expected_month_end,
    expected_payments,
    rows_of,
    snapshot,
)
from tests.support import Workspace, serve

pytestmark = pytest.mark.integration

EU_KEY = "kt_sandbox_eu_7c1d0e55aa"

Run = tuple[str, dt.datetime, Mapping[Key, State]]


def load(ws: Workspace, env: dict[str, str], clock: Clock, at: dt.datetime, runs: list[Run]) -> str:
    """One run of the command line started at `at`; its id, start and the invoices it left are
    appended to `runs`. The sandboxes' changes before it are stamped half a minute earlier."""
    clock.at(at)
    result = ws.run(env)
    assert result.code == 0, result.output
    run_ids = {r[0] for r in ws.query("SELECT run_id FROM billing.pipeline_runs WHERE started_at = ?", at)}
    assert len(run_ids) == 1, run_ids
    run_id = run_ids.pop()
    runs.append((run_id, at, snapshot(ws.query)))
    return run_id


def changes_before(clock: Clock, at: dt.datetime) -> None:
    clock.at(at - dt.timedelta(seconds=30))


def invoices_of(ws: Workspace) -> dict[Key, dict[str, Any]]:
    columns = "client_id, currency, total, issue_date, due_date, paid_at, document_type, status, deleted_at"
    names = columns.split(", ")
    rows = ws.query(f"SELECT provider, account, invoice_id, {columns} FROM billing.invoices")
    return {(r[0], r[1], r[2]): dict(zip(names, r[3:], strict=True)) for r in rows}


def runs_of(ws: Workspace) -> list[dict[str, Any]]:
    rows = ws.query("SELECT provider, account, status, started_at FROM billing.pipeline_runs")
    return [dict(zip(("provider", "account", "status", "started_at"), r, strict=True)) for r in rows]


def statuses(ws: Workspace, provider: str) -> dict[str, list[tuple[str, bool]]]:
    found: dict[str, list[tuple[str, bool]]] = {}
    for row in rows_of(ws.query):
        if row.provider == provider:
            found.setdefault(row.invoice_id, []).append((str(row.status), row.deleted))
    return found


def fohlio_ids(app: fohlio.FohlioSandbox, *wanted: str) -> list[int]:
    """One invoice of each wanted status, each a different invoice, lowest id first."""
    ids: list[int] = []
    for status in wanted:
        ids.append(next(i for i, v in sorted(app.team.invoices.items()) if v.status == status and i not in ids))
    return ids


def kitchen_ids(app: kitchen.KitchenApp, status: str, count: int) -> list[str]:
    return [str(i["id"]) for i in app.invoices if i["status"] == status][:count]


def test_history_keeps_each_observed_state_and_the_views_agree_with_it(workspace: Workspace, clock: Clock) -> None:
    """Fohlio invoices move draft → open → partially paid → paid → void between runs, one is
    deleted and listed again; Kitchen invoices are paid (with the provider's `paid_at`), voided
    and deleted. The runs fall three months back, twice on one month's last day and once on the
    next month's first, so that month ends cut between them. The history holds exactly the
    states the runs saw; the views give what the Python reference computes from it; a last run
    with nothing changed adds nothing."""
    back3, back2, back1 = month_start(3), month_start(2), month_start(1)
    last_day = back2 - dt.timedelta(days=1)
    times = [
        utc(back3 + dt.timedelta(days=4), 10),
        utc(last_day, 1),
        utc(last_day, 23),
        utc(back2, 0, 30),
        utc(back1 + dt.timedelta(days=14), 12),
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
    ]
    clock.at(times[0] - dt.timedelta(days=1))
    foh = fohlio.create_app(seed=11, clients=4, invoices=24, projects=5)
    kit = kitchen.create_app(seed=5, clients=4, invoices=30)
    runs: list[Run] = []
    with serve(foh) as f_server, serve(kit) as k_server:
        env = {
            **foh.pipeline_env(f_server.url),
            **kit.pipeline_env(k_server.url),
            "SOURCES__FOHLIO__RECONCILE_EVERY_DAYS": "0",  # Fohlio's sweep finds deletions on every run
        }
        load(workspace, env, clock, times[0], runs)

        drafted, opened, part_paid, paid = fohlio_ids(foh, "draft", "sent", "paid_partially", "paid")
        deleted, overdue = fohlio_ids(foh, "overdue", "overdue")
        k_paid, k_void, k_gone = kitchen_ids(kit, "open", 3)
        changes_before(clock, times[1])
        foh.update_invoice(drafted, status="sent")
        foh.update_invoice(opened, status="paid_partially", paid_share=Decimal("0.4"))
        foh.update_invoice(part_paid, status="paid")
        added = foh.add_invoice()
        kit.update_invoice(k_paid, status="paid")
        load(workspace, env, clock, times[1], runs)

        changes_before(clock, times[2])
        foh.update_invoice(drafted, status="paid_partially", paid_share=Decimal("0.25"))
        foh.update_invoice(opened, status="paid")
        foh.update_invoice(paid, status="void")
        kept = foh.team.invoices.pop(deleted)
        kit.update_invoice(k_void, status="void")
        kit.delete_invoice(k_gone)
        load(workspace, env, clock, times[2], runs)

        changes_before(clock, times[3])
        foh.update_invoice(drafted, status="paid")
        foh.team.invoices[deleted] = kept  # listed again, unchanged since it was last written
        foh.update_invoice(added, status="sent")
        load(workspace, env, clock, times[3], runs)

        changes_before(clock, times[4])
        foh.update_invoice(overdue, status="paid_partially", paid_share=Decimal("0.5"))
        load(workspace, env, clock, times[4], runs)

        before = rows_of(workspace.query)
        last = load(workspace, env, clock, times[5], runs)  # nothing changed upstream

    history = rows_of(workspace.query)
    assert history == before, "a run with nothing changed added or changed history rows"
    assert not [r for r in history if r.run_id == last]
    assert history == expected_history(runs)

    # What the scenario was meant to show is there.
    moves = statuses(workspace, "fohlio")
    assert [s for s, _ in moves[str(drafted)]] == ["draft", "open", "partially_paid", "paid"]
    assert [s for s, _ in moves[str(paid)]][-2:] == ["paid", "void"]
    assert [d for _, d in moves[str(deleted)]] == [False, True, False]
    assert [s for s, _ in statuses(workspace, "kitchen")[k_paid]] == ["open", "paid"]
    assert [d for _, d in statuses(workspace, "kitchen")[k_gone]] == [False, True]
    assert {r.valid_from for r in history} <= {started for _, started, _ in runs}

    invoices = invoices_of(workspace)
    payments = expected_payments(history, invoices, runs_of(workspace))
    columns = [
        "client_id, currency, total, issue_date, due_date, paid_at, paid_not_before, paid_by, paid_on, days_to_pay",
        "days_late",
    ]
    names = ", ".join(columns).split(", ")
    found = {
        (r[0], r[1], r[2]): dict(zip(names, r[3:], strict=True))
        for r in workspace.query(
            f"SELECT provider, account, invoice_id, {', '.join(columns)} FROM billing.invoice_payments"
        )
    }
    assert found == payments
    observed = [p for p in payments.values() if p["paid_not_before"] is not None]
    assert observed and all(p["days_to_pay"] is not None for p in observed)
    assert payments[("kitchen", "acme", k_paid)]["paid_at"] is not None
    fohlio_paid = next(p for key, p in payments.items() if key[0] == "fohlio" and key[2] == str(drafted))
    assert fohlio_paid["paid_at"] is None and fohlio_paid["paid_not_before"] is not None

    today = workspace.scalar("SELECT CURRENT_DATE")
    types = {key: invoice["document_type"] for key, invoice in invoices.items()}
    month_end = expected_month_end(history, types, today)
    figures = ["month_end", "documents", *BUCKETS, "outstanding"]
    view = {
        (r[0], r[1], r[2], r[3]): dict(zip(figures, r[4:], strict=True))
        for r in workspace.query(
            f"SELECT provider, account, currency, month, {', '.join(figures)} FROM billing.receivables_month_end"
        )
    }
    assert view == month_end
    assert {month for *_, month in view} == {back3, back2, back1, month_start(0)}
    assert any(v["outstanding"] != 0 and v["month_end"] != today for v in view.values())

    assert_invariants(workspace)


def assert_invariants(ws: Workspace) -> None:
    """docs/canonical-model.md, "Invariants": every invoice's latest history row holds its current
    state; the latest month of receivables_month_end has receivables_aging's outstanding."""
    latest = {r.key: r.state for r in rows_of(ws.query) if r.valid_to is None}
    assert latest == snapshot(ws.query)
    per_history = ws.query(
        "SELECT provider, account, currency, outstanding FROM billing.receivables_month_end "
        "WHERE month = date_trunc('month', current_date) ORDER BY ALL"
    )
    aging = ws.query(
        "SELECT provider, account, currency, sum(outstanding) FROM billing.receivables_aging GROUP BY ALL ORDER BY ALL"
    )
    assert [r for r in per_history if r[3] != 0] == [r for r in aging if r[3] != 0]


def test_the_first_run_that_keeps_history_starts_it_and_invents_nothing_earlier(
    workspace: Workspace, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse loaded by a version without history (no `invoice_history` table, no history
    in any dlt schema): the next run gives every invoice its state after that run as its first
    row, dated by that run, though Kitchen rewrites none of them (nothing changed); an invoice
    that run finds deleted gets its deleted state. Nothing is dated earlier."""
    kit = kitchen.create_app(seed=3)
    with serve(kit) as server:
        env = kit.pipeline_env(server.url)
        with monkeypatch.context() as without:
            without.setattr(pipelines_history, "begin", lambda *args, **kwargs: None)
            clock.days_ago(20)
            first = workspace.run(env)
            assert first.code == 0, first.output
        tables = {r[0] for r in workspace.query("SELECT table_name FROM information_schema.tables")}
        assert "invoice_history" not in tables and "invoice_payments" not in tables
        gone = kitchen_ids(kit, "open", 1)[0]
        kit.delete_invoice(gone)
        runs: list[Run] = []
        started = clock.days_ago(10)
        run_id = load(workspace, env, clock, started, runs)
        rows = rows_of(workspace.query)
        assert rows == expected_history(runs)
        assert {(r.valid_from, r.valid_to, r.run_id) for r in rows} == {(started, None, run_id)}
        assert len(rows) == kit.summary()["invoices"] + 1
        assert [r.deleted for r in rows if r.invoice_id == gone] == [True]
        assert workspace.scalar("SELECT count(*) FROM billing.invoice_payments") > 0

        changed = kitchen_ids(kit, "open", 1)[0]
        clock.days_ago(5)
        kit.update_invoice(changed, status="void")
        load(workspace, env, clock, clock.days_ago(4), runs)
    assert rows_of(workspace.query) == expected_history(runs)
    assert [r.status for r in rows_of(workspace.query) if r.invoice_id == changed] == ["open", "void"]
    assert_invariants(workspace)


def test_remap_adds_no_history_but_corrects_the_current_rows_and_reset_removes_an_accounts_history(
    workspace: Workspace, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = kitchen.create_app(seed=4)
    foh = fohlio.create_app(seed=4)
    with serve(kit) as k_server, serve(foh) as f_server:
        env = {**kit.pipeline_env(k_server.url), **foh.pipeline_env(f_server.url)}
        runs: list[Run] = []
        load(workspace, env, clock, clock.days_ago(3), runs)
        clock.days_ago(2)
        kit.update_invoice(kitchen_ids(kit, "open", 1)[0], status="paid")
        load(workspace, env, clock, clock.days_ago(1), runs)
    before = rows_of(workspace.query)
    assert len(before) > len({r.key for r in before})  # some invoice has two rows

    # A mapping that reads Kitchen's `paid` as open: the remap rewrites those invoices, and their
    # current history rows take the new values in place.
    from sources.kitchen import mapping

    with monkeypatch.context() as changed:
        changed.setattr(mapping, "STATUSES", {**mapping.STATUSES, "paid": "open"})
        remapped = workspace.run({}, "remap")
        assert remapped.code == 0, remapped.output
        after = rows_of(workspace.query)
        moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
        assert moved and all(b.status == "paid" and a.status == "open" for b, a in moved)
        assert all(a.valid_to is None and a.balance_due == a.total for _, a in moved)
        assert [(r.key, r.valid_from, r.valid_to, r.run_id) for r in after] == [
            (r.key, r.valid_from, r.valid_to, r.run_id) for r in before
        ]
        assert_invariants(workspace)
    back = workspace.run({}, "remap")
    assert back.code == 0, back.output
    assert rows_of(workspace.query) == before

    reset = workspace.run({}, "reset", "kitchen:acme")
    assert reset.code == 0, reset.output
    left = rows_of(workspace.query)
    assert left == [r for r in before if r.provider != "kitchen"] and left
    assert_invariants(workspace)


def test_history_holds_when_a_run_commits_in_batches_and_accounts_load_together(
    workspace: Workspace, clock: Clock
) -> None:
    """InvoiceXpress rewrites every document on every run, committed in batches of 4 clients;
    two Kitchen workspaces are extracted together in one load. Every batch and account of a run
    is dated by the run, and a rewrite with nothing changed adds nothing."""
    ix = invoicexpress.create_app(seed=6, clients=10)
    acme = kitchen.create_app(seed=1, workspace="acme", invoices=20)
    eu = kitchen.create_app(seed=2, workspace="acme-eu", api_key=EU_KEY, clients=5, invoices=20)
    runs: list[Run] = []
    with serve(ix) as i_server, serve(acme) as a, serve(eu) as e:
        env = {
            **ix.pipeline_env(i_server.url),
            "SOURCES__INVOICEXPRESS__CONCURRENCY": "1",
            "BATCH_CLIENTS": "4",
            **acme.pipeline_env(a.url),
            **{f"SOURCES__KITCHEN__ACCOUNTS__EU__{k.upper()}": v for k, v in eu.config(e.url).items() if v},
        }
        first = load(workspace, env, clock, clock.days_ago(9), runs)
        documents = [d for d in ix.all_invoices() if d["status"] in ("final", "sent")]
        clock.days_ago(6)
        for document in (documents[0], documents[-1]):  # in the first batch and the last
            ix.update_invoice(document["id"], status="settled")
        acme.update_invoice(kitchen_ids(acme, "open", 1)[0], status="paid")
        eu.update_invoice(kitchen_ids(eu, "open", 1)[0], status="void")
        second = load(workspace, env, clock, clock.days_ago(5), runs)
        third = load(workspace, env, clock, clock.days_ago(1), runs)
    history = rows_of(workspace.query)
    assert history == expected_history(runs)
    assert {r.account for r in history if r.provider == "kitchen"} == {"acme", "acme-eu"}
    by_run = {run_id: {(r.provider, r.account) for r in history if r.run_id == run_id} for run_id in (first, second)}
    assert by_run[second] == {("invoicexpress", "sandbox"), ("kitchen", "acme"), ("kitchen", "acme-eu")}
    assert len([r for r in history if r.run_id == second]) == 4
    assert not [r for r in history if r.run_id == third]
    loads = workspace.scalar("SELECT count(*) FROM billing._dlt_loads WHERE schema_name = 'invoicexpress'")
    assert loads >= 3 * 3  # three runs of three batches each
    assert_invariants(workspace)
