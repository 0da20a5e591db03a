"""The invoice history a run keeps (docs/history.md; docs/canonical-model.md, `invoice_history`).

The rows a load writes carry their history with them (`sources/shared/history.py`: candidates in
the same load package, merged by dlt's `scd2`). What no load package holds is written here, in
SQL through dlt's SQL client, so the same statements run on DuckDB and Postgres:

- `begin`: the run's id and start time become the run that observes (every history row the run
  writes has `valid_from` = that start and `run_id` = that id); a warehouse loaded before history
  was kept gets its `invoice_history` table first, created through dlt as a load would;
- `record_deletions`: in the transaction that marks invoices deleted, or clears the mark of an
  invoice listed again (`pipelines/deletions.py`), its current row ends and a row with
  `deleted` true (or false) begins;
- `settle`: after an account's load and deletions, a live invoice with no history row yet (one
  loaded before history was kept, which an unchanged listing did not write again) gets its
  current state as its first row: history starts at this run and invents nothing earlier;
- `correct_current`: after a remap, an invoice's current row takes the remapped values in
  place: a remap saw nothing new at the provider, so it adds no row;
- `reset` deletes an account's history with its rows (`pipelines/run.py`).

A state of an invoice is the tuple of `sources.shared.history.TRACKED` and `deleted`; a new row
is written only when it differs from the invoice's current row.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dlt
import pyarrow as pa

from pipelines.failures import Stopped, stop_signal
from pipelines.retry import loading
from pipelines.summary import Outcome
from pipelines.views import table_columns
from pipelines.warehouse import loader_file_format
from sources.shared import history
from sources.shared.history import HISTORY, KEY, TRACKED, VALID_FROM, VALID_TO, VERSION, state_version_sql
from sources.shared.model import INVOICES
from sources.shared.redact import redact

log = logging.getLogger("billing.run")

HISTORY_SCHEMA = "billing_history"  # the dlt schema that creates the table in a warehouse loaded before history
BATCH = 500  # ids per IN (...) list, as deletions.py marks them
_INSERTED = (*KEY, *TRACKED, "deleted", VALID_FROM, VALID_TO, "run_id", VERSION)


@contextmanager
def observing() -> Iterator[None]:
    """The block of one run: history is kept from `begin` to the end of the block only."""
    try:
        yield
    finally:
        history.observe(None)


def begin(pipeline: dlt.Pipeline, run_id: str, started: dt.datetime) -> None:
    """Make this run the one that observes, from its start time (UTC), and make sure a warehouse
    that holds invoices holds `invoice_history` too (a warehouse loaded before history was kept)."""
    run = history.Run(run_id, started.astimezone(dt.UTC))
    history.observe(run)
    try:
        with pipeline.sql_client() as client:
            if not client.has_dataset() or table_columns(client, HISTORY) or not table_columns(client, INVOICES):
                return
    except Exception as exc:  # the run's own steps say what is wrong with the warehouse
        log.debug("invoice history: %s", exc)
        return
    log.info("invoice history starts with this run: every live invoice's current state is its first row")
    empty = pa.Table.from_pylist([], schema=history.SCHEMA)
    item = dlt.mark.with_hints(empty, history.hints(run), create_table_variant=True)
    resource = dlt.resource([item], name=HISTORY)
    file_format = loader_file_format(pipeline.destination)
    try:
        loading(
            pipeline,
            lambda: pipeline.run(resource, schema=dlt.Schema(HISTORY_SCHEMA), loader_file_format=file_format),
            HISTORY,
        )
    except Exception as exc:
        signum = stop_signal(exc)
        if signum is not None:
            raise Stopped(signum) from None
        # Its package held nothing but the empty table: never left for the providers' loads to
        # load instead of their own. The loads create the table with their first history rows;
        # until then, the SQL steps (deletions, first states) find no table and leave them to the next run.
        pipeline.drop_pending_packages()
        log.warning("the invoice_history table could not be created before the loads: %s", redact(str(exc)))


def _run() -> history.Run | None:
    return history.current()


def _has_history(client: Any) -> bool:
    return bool(table_columns(client, HISTORY))


def _insert_from_invoices(client: Any, run: history.Run, deleted: str, where: str, *params: Any) -> None:
    """Insert, from the `invoices` rows `where` selects (alias `i`), their state as of this run."""
    h, invoices = client.make_qualified_table_name(HISTORY), client.make_qualified_table_name(INVOICES)
    values = ", ".join(f"i.{c}" for c in (*KEY, *TRACKED))
    client.execute_sql(
        f"INSERT INTO {h} ({', '.join(_INSERTED)}) "
        f"SELECT {values}, {deleted}, %s, NULL, %s, {state_version_sql('i', deleted)} "
        f"FROM {invoices} AS i WHERE {where}",
        run.started,
        run.run_id,
        *params,
    )


def record_deletions(client: Any, provider: str, account: str, gone: Sequence[str], back: Sequence[str]) -> None:
    """In the open transaction of `pipelines/deletions.py`, after it marked `gone` deleted and
    cleared `back`: the current row of each ends at this run and its new state begins (from its
    `invoices` row, `deleted` true for `gone`, false for `back`). An invoice whose current row
    already says so is left as it is; one with no history yet gets its first row."""
    run = _run()
    if run is None or not (gone or back) or not _has_history(client):
        return
    h = client.make_qualified_table_name(HISTORY)
    for ids, deleted in ((gone, "TRUE"), (back, "FALSE")):
        for start in range(0, len(ids), BATCH):
            batch = list(ids[start : start + BATCH])
            marks = ", ".join(["%s"] * len(batch))
            client.execute_sql(
                f"UPDATE {h} SET {VALID_TO} = %s WHERE provider = %s AND account = %s AND {VALID_TO} IS NULL "
                f"AND deleted <> {deleted} AND invoice_id IN ({marks})",
                run.started,
                provider,
                account,
                *batch,
            )
            _insert_from_invoices(
                client,
                run,
                deleted,
                f"i.provider = %s AND i.account = %s AND i.invoice_id IN ({marks}) AND NOT EXISTS "
                f"(SELECT 1 FROM {h} AS h WHERE h.provider = i.provider AND h.account = i.account "
                f"AND h.invoice_id = i.invoice_id AND h.{VALID_TO} IS NULL)",
                provider,
                account,
                *batch,
            )


def settle(pipeline: dlt.Pipeline, outcomes: Sequence[Outcome], report: Any = None) -> None:
    """After one provider's accounts were loaded and their deletions marked: the first row of
    every live invoice of a loaded account that has none yet, in one transaction per account;
    how many rows this run added to each account's history is logged (and kept in
    `report.history_rows` when a report is given)."""
    run = _run()
    loaded = [o for o in outcomes if o.status == "loaded" and o.account]
    if run is None or not loaded:
        return
    try:
        with pipeline.sql_client() as client:
            if not _has_history(client):
                return
            live = "i.deleted_at IS NULL AND " if "deleted_at" in table_columns(client, INVOICES) else ""
            h = client.make_qualified_table_name(HISTORY)
            for outcome in loaded:
                with client.begin_transaction():
                    _insert_from_invoices(
                        client,
                        run,
                        "FALSE",
                        f"i.provider = %s AND i.account = %s AND {live}NOT EXISTS (SELECT 1 FROM {h} AS h "
                        "WHERE h.provider = i.provider AND h.account = i.account AND h.invoice_id = i.invoice_id)",
                        outcome.provider,
                        outcome.account,
                    )
                rows = client.execute_sql(
                    f"SELECT count(*) FROM {h} WHERE run_id = %s AND provider = %s AND account = %s",
                    run.run_id,
                    outcome.provider,
                    outcome.account,
                )
                added = int(rows[0][0]) if rows else 0
                log.info("%s [%s]: invoice history: %s new state(s)", outcome.provider, outcome.account, f"{added:,}")
                if report is not None:
                    report.history_rows[(outcome.provider, outcome.account)] = added
    except Exception as exc:
        signum = stop_signal(exc)
        if signum is not None:
            raise Stopped(signum) from None
        # The next run starts the history of what this one could not (its invoices have no row yet).
        log.warning("the invoice history could not be started for every invoice: %s", redact(str(exc)))


def correct_current(client: Any, provider: str, accounts: Sequence[str]) -> None:
    """After a remap of `provider`'s `accounts`: an invoice whose tracked values the remap changed
    gets them on its current history row, in place (a remap observes nothing: no row is added)."""
    if not accounts or not _has_history(client):
        return
    h, invoices = client.make_qualified_table_name(HISTORY), client.make_qualified_table_name(INVOICES)
    changed = " OR ".join(f"h.{c} IS DISTINCT FROM i.{c}" for c in TRACKED)
    sets = ", ".join(f"{c} = i.{c}" for c in TRACKED)
    match = " AND ".join(f"h.{k} = i.{k}" for k in KEY)
    marks = ", ".join(["%s"] * len(accounts))
    with client.begin_transaction():
        client.execute_sql(
            f"UPDATE {h} AS h SET {sets}, {VERSION} = {state_version_sql('i', 'h.deleted')} FROM {invoices} AS i "
            f"WHERE {match} AND h.{VALID_TO} IS NULL AND h.provider = %s AND h.account IN ({marks}) AND ({changed})",
            provider,
            *accounts,
        )
