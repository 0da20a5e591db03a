"""Deletions reach the warehouse (docs/canonical-model.md, "Deletions").

After an account's rows are loaded, what its listings held (`sources.shared.deletions.Listed`,
noted by the driver) is compared with the warehouse, through dlt's SQL client, so the same
statements run on DuckDB and Postgres:

- a live row (`deleted_at IS NULL`) of a scope read completely that no listing held gets
  `deleted_at` = when the run started listing; the lines of a deleted invoice stay;
- a row marked deleted that a listing holds again is cleared (a record written again by the run
  is cleared by its load already: mapped rows carry no `deleted_at`);
- the mass-delete guard: when a run would mark more than `max_delete_fraction` of the account's
  live invoices, or of its live clients, nothing of the account is marked, the account's outcome
  is `failed` with the figures and the fix (the run exits 1), and a sweep of an incremental
  listing is due again on the next run; `--allow-mass-delete` confirms for one run.

Where the contract is silent (docs/deletions.md): the account's documents whose client was
deleted are marked only by a complete listing of documents that no longer holds them, never
because their client is gone; a run killed between its load and this step marks what it
missed on the next complete listing, which for a swept incremental listing is the next run: a
sweep counts as done only once its deletions are marked (`_sweep_done`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dlt

from pipelines import config
from pipelines.config import AccountConfig
from pipelines.failures import Stopped, stop_signal
from pipelines.history import record_deletions
from pipelines.retry import loading
from pipelines.summary import Outcome
from pipelines.views import table_columns
from sources.shared.deletions import Listed
from sources.shared.driver import forget_sweeps, sweeps_marked
from sources.shared.model import CLIENTS, INVOICES
from sources.shared.provider import Provider
from sources.shared.redact import redact
from sources.shared.sweep import deletions_marked, unmarked

log = logging.getLogger("billing.run")

KEYS = {INVOICES: "invoice_id", CLIENTS: "client_id"}
NOUNS = {INVOICES: "invoices", CLIENTS: "clients"}
BATCH = 500


@dataclass
class Found:
    """One table's deletions for one account."""

    table: str
    live: int = 0
    gone: list[str] = field(default_factory=list)
    back: list[str] = field(default_factory=list)

    def too_many(self, fraction: float) -> bool:
        return bool(self.gone) and len(self.gone) > fraction * self.live


def settle(
    pipeline: dlt.Pipeline,
    provider: Provider,
    accounts: Sequence[AccountConfig],
    outcomes: Sequence[Outcome],
    allow_mass_delete: bool = False,
) -> None:
    """Mark or clear the deletions of every loaded account of one provider (`outcomes` in the
    order of `accounts`), and say so in its outcome; a refused or failed marking fails the account."""
    for account, outcome in zip(accounts, outcomes, strict=False):
        stats = outcome.stats
        if stats is None or stats.listed is None:
            continue
        listed = stats.listed if outcome.status == "loaded" else _committed_part(pipeline, provider, stats.listed)
        if listed is None:
            continue
        notes: list[str] = []
        if listed.unlisted:
            first = next(iter(listed.unlisted.values()))
            notes.append(
                f"the documents of {len(listed.unlisted):,} client(s) could not be listed ({first}); they are read "
                "again by the next run, and nothing of them was taken as deleted"
            )
        try:
            fraction = config.max_delete_fraction(account)
            found = _apply(pipeline, listed, fraction, allow_mass_delete)
            refused = any(f.too_many(fraction) for f in found) and not allow_mass_delete
            if refused and listed.swept:
                _sweep_again(pipeline, provider, listed)
            elif listed.swept:
                _sweep_done(pipeline, provider, listed)
            if not refused:
                _clients_marked(pipeline, provider, listed)
        except Exception as exc:
            signum = stop_signal(exc)
            if signum is not None:
                raise Stopped(signum) from None
            outcome.status = "failed"
            notes.append(
                redact(
                    f"the rows no longer listed could not be marked deleted: {type(exc).__name__}: {exc}. The run's "
                    "rows were loaded; the next complete listing marks them"
                )
            )
            outcome.message = _join(outcome, notes)
            continue
        if refused:
            outcome.status = "failed"
            notes.append(_refusal(provider, account, found, fraction))
        else:
            stats.deleted = sum(len(f.gone) for f in found)
            marked = [f"{len(f.gone):,} {NOUNS[f.table]}" for f in found if f.gone]
            if marked:
                notes.append(f"marked deleted (no longer listed upstream): {' and '.join(marked)}")
        back = [f"{len(f.back):,} {NOUNS[f.table]}" for f in found if f.back]
        if back:
            notes.append(f"listed again, no longer deleted: {' and '.join(back)}")
        if notes:
            outcome.message = _join(outcome, notes)


def _committed_part(pipeline: dlt.Pipeline, provider: Provider, listed: Listed) -> Listed | None:
    """What a failed account's listings show of the clients whose batches it committed (a sweep
    committed in batches, sources/shared/sweep.py): their deletions are marked now, as a finished
    run's would be, so the next run resumes the sweep after them instead of listing them again.
    None when the failed run committed no such client."""
    account_state = pipeline.state.get("sources", {}).get(provider.name, {}).get(listed.account)
    committed = unmarked(account_state) if isinstance(account_state, dict) else set()
    clients: set[str | None] = {c for c in listed.scopes.get(INVOICES, set()) if c in committed}
    if not clients:
        return None
    return dataclasses.replace(listed, scopes={**listed.scopes, INVOICES: clients}, unlisted={}, swept=False)


def _apply(pipeline: dlt.Pipeline, listed: Listed, fraction: float, allow: bool) -> list[Found]:
    """Find one account's deletions and returns of both tables; mark them unless the guard refuses."""
    found: list[Found] = []
    with pipeline.sql_client() as client:
        for table in (INVOICES, CLIENTS):
            if "deleted_at" in table_columns(client, table):
                found.append(_find(client, listed, table))
        refused = any(f.too_many(fraction) for f in found) and not allow
        with client.begin_transaction():
            for f in found:
                _update(client, listed, f.table, f.back, None)
                if not refused:
                    _update(client, listed, f.table, f.gone, listed.at)
                if f.table == INVOICES:  # their history, in the same transaction (pipelines/history.py)
                    record_deletions(client, listed.provider, listed.account, [] if refused else f.gone, f.back)
    return found


def _find(client: Any, listed: Listed, table: str) -> Found:
    key, qualified = KEYS[table], client.make_qualified_table_name(table)
    scope = "client_id" if table == INVOICES else "NULL"
    rows = client.execute_sql(
        f"SELECT {key}, {scope}, deleted_at IS NULL FROM {qualified} WHERE provider = %s AND account = %s",
        listed.provider,
        listed.account,
    )
    found = Found(table)
    for record_id, client_id, live in rows or []:
        record_id = str(record_id)
        if not live:
            if listed.holds(table, record_id):
                found.back.append(record_id)
            continue
        found.live += 1
        if listed.covers(table, client_id) and not listed.holds(table, record_id):
            found.gone.append(record_id)
    return found


def _update(client: Any, listed: Listed, table: str, ids: list[str], deleted_at: Any) -> None:
    key, qualified = KEYS[table], client.make_qualified_table_name(table)
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        marks = ", ".join(["%s"] * len(batch))
        client.execute_sql(
            f"UPDATE {qualified} SET deleted_at = %s WHERE provider = %s AND account = %s AND {key} IN ({marks})",
            deleted_at,
            listed.provider,
            listed.account,
            *batch,
        )


def _refusal(provider: Provider, account: AccountConfig, found: list[Found], fraction: float) -> str:
    figures = " and ".join(
        f"{len(f.gone):,} of its {f.live:,} {NOUNS[f.table]} ({100 * len(f.gone) / max(f.live, 1):.0f} %)"
        for f in found
        if f.gone
    )
    return (
        f"deletions refused: the complete listings no longer hold {figures}, more than max_delete_fraction = "
        f"{fraction:g} ({100 * fraction:.0f} %) allows; nothing was marked deleted (the run's other rows were "
        "loaded). If these deletions are real, confirm them once with `billing-elt load --allow-mass-delete` "
        f"(PROVIDERS={account.name} for this account alone); if not, check that the account's configuration "
        "still names the same account and filters. The share is set by "
        f"{provider.env(config.MAX_DELETE_FRACTION, account.stanza)} (or MAX_DELETE_FRACTION for every account)"
    )


def _sweep_again(pipeline: dlt.Pipeline, provider: Provider, listed: Listed) -> None:
    """A refused sweep is due again next run, so that the refusal stands until confirmed."""
    _change_account_state(pipeline, provider, listed, forget_sweeps)


def _sweep_done(pipeline: dlt.Pipeline, provider: Provider, listed: Listed) -> None:
    """The sweep's deletions are marked: only now does it count as the last sweep (a run killed
    before this point sweeps again on the next run, see `sources.shared.driver.SWEPT_PENDING`)."""
    _change_account_state(pipeline, provider, listed, sweeps_marked)


def _clients_marked(pipeline: dlt.Pipeline, provider: Provider, listed: Listed) -> None:
    """The clients whose listings this run read completely had their deletions marked: a sweep of
    per-client listings committed in batches need not list them again (sources/shared/sweep.py)."""
    clients = {c for c in listed.scopes.get(INVOICES, set()) if c is not None}
    if clients:
        _change_account_state(pipeline, provider, listed, lambda state: deletions_marked(state, clients))


def _change_account_state(
    pipeline: dlt.Pipeline, provider: Provider, listed: Listed, change: Callable[[dict[str, Any]], bool]
) -> None:
    """Apply `change` to the account's dlt source state and, when it changed something, commit
    it in a load of its own (a package holding only the state)."""
    with pipeline.managed_state(extract_state=True) as state:
        account_state = state.get("sources", {}).get(provider.name, {}).get(listed.account)
        changed = isinstance(account_state, dict) and change(account_state)
    if changed:
        pipeline.normalize()
        loading(pipeline, pipeline.load, f"{provider.name} [{listed.account}]")


def _join(outcome: Outcome, notes: list[str]) -> str:
    where = f"{outcome.provider} [{outcome.account}]" if outcome.account else outcome.provider
    text = "; ".join(notes)
    if outcome.message:
        return f"{outcome.message}; {text}"
    return f"{where}: {text}"
