"""A run: every selected provider account extracted, normalized and loaded, one after another.

In order: the run lock of the warehouse (pipelines/lock.py) before anything else; dlt's local
state tidied (what killed runs left, see `tidy_local_state`); the dlt pipeline made from
configuration and the warehouse checked once; an interrupted run's pending load finished before
anything new is extracted; each provider on its own, so that one failing provider never stops
the others; each account's outcome written to `pipeline_runs`; the summary. A SIGINT/SIGTERM
(`failures.Stopped`) stops the whole run at once.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import importlib.metadata
import logging
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
import duckdb
import httpx
from dlt.extract.source import DltSource

from pipelines import checks, config, history, keys
from pipelines.config import AccountConfig
from pipelines.deletions import settle as settle_deletions
from pipelines.failures import Stopped, Where, check_duckdb_file, check_pipelines_dir, explain, stop_signal
from pipelines.lock import SUFFIX, LockHeld, RunLocks
from pipelines.rates import RATES_SOURCE, load_rates, reporting_currency
from pipelines.registry import discover
from pipelines.retry import loading
from pipelines.runtrace import RunTrace, collect
from pipelines.summary import Outcome, describe_failure, summary_lines
from pipelines.views import refresh_after_run
from pipelines.warehouse import (
    NON_FILE_DATABASES,
    account_holds_no_rows,
    destination,
    duckdb_file,
    hold_duckdb_file,
    loader_file_format,
    repair_interrupted_appends,
)
from sources.shared import http, stop, structure
from sources.shared import stats as run_stats
from sources.shared.declaration import Api
from sources.shared.driver import Account, account_batches
from sources.shared.history import HISTORY
from sources.shared.model import CLIENTS, INVOICE_ITEMS, INVOICES, UNMAPPED
from sources.shared.provider import Provider
from sources.shared.redact import redact
from sources.shared.structure import SCHEMA_CHANGES
from sources.shared.sweep import Batches, split

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
PIPELINE_RUNS = "pipeline_runs"
RUNS_SCHEMA = "billing_runs"

log = logging.getLogger("billing.run")


def version() -> str:
    try:
        return importlib.metadata.version("billing-elt")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "unknown"


def new_run_id(started: dt.datetime | None = None) -> str:
    """A sortable, unique run id: `20250101T020000Z-1a2b3c` (from `started`, default now)."""
    return (started or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def utc_now() -> dt.datetime:
    """The runs' clock: a run's start (its id, its history's `valid_from`) and every time it writes
    to `pipeline_runs` come from here (tests replace it to date runs)."""
    return dt.datetime.now(dt.UTC)


# --- where a run writes ---------------------------------------------------------------------


def where(pipeline_name: str | None = None) -> Where:
    """The warehouse and local state a run of this configuration writes, from configuration only."""
    kind = config.destination_type()
    database: Path | None = None
    if kind in ("duckdb", "dlt.destinations.duckdb"):
        kind = "duckdb"
        file = duckdb_file()
        if file not in NON_FILE_DATABASES:
            database = Path(file).expanduser().absolute()
    return Where(kind, database, config.pipelines_dir(), _network_target(kind))


def _network_target(kind: str) -> str | None:
    """`scheme://user@host:port/db` of a networked destination (never its password)."""
    value: Any = dlt.secrets.get(f"destination.{kind}.credentials")
    if not value:
        return None
    from urllib.parse import urlsplit

    if isinstance(value, Mapping):
        host, port, user, db = value.get("host"), value.get("port"), value.get("username"), value.get("database")
        return f"{kind}://{user or ''}@{host or ''}:{port or ''}/{db or ''}"
    parts = urlsplit(str(value))
    netloc = f"{parts.username + '@' if parts.username else ''}{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def lock_paths(target: Where, pipeline_name: str) -> list[Path]:
    """The run locks: beside the DuckDB file (the warehouse), and beside the pipeline's local state
    folder in the pipelines dir (shared by every run of this pipeline name, whatever the warehouse)."""
    paths = [target.pipelines_dir / f"{pipeline_name}{SUFFIX}"]
    if target.database is not None:
        paths.insert(0, target.database.with_name(target.database.name + SUFFIX))
    return paths


def describe_target(target: Where) -> str:
    if target.database is not None:
        return f"duckdb {target.database}"
    return f"{target.destination} {target.credentials or ''}".strip()


# --- the pipeline -----------------------------------------------------------------------------


def make_pipeline(pipeline_name: str | None = None, held: duckdb.DuckDBPyConnection | None = None) -> dlt.Pipeline:
    """The dlt pipeline, its destination and dataset read from dlt config with our defaults.

    Keys: `pipeline_name` (default `billing`), `destination_type` (default `duckdb`),
    `dataset_name` (default `billing`); for DuckDB the file is `destination.duckdb.credentials`.
    Completed load packages are deleted once loaded (`load.delete_completed_jobs`). With `held`
    (`warehouse.hold_duckdb_file`), every step writes the DuckDB file through that connection.
    """
    pipeline = dlt.pipeline(
        pipeline_name=config.pipeline_name(pipeline_name),
        destination=destination(config.destination_type(), held),
        dataset_name=config.dataset_name(),
    )
    pipeline = _forget_state_of_another_warehouse(pipeline, describe_target(where(pipeline.pipeline_name)))
    # The run owns SIGINT and SIGTERM (pipelines/cli.py): dlt's steps only read the stop request,
    # they do not install (and, when a step ends, clear) handlers of their own.
    pipeline.runtime_config.intercept_signals = False
    return pipeline


WAREHOUSE_OF_STATE = "billing_warehouse"
"""Where the local state keeps which warehouse (destination and dataset) it describes."""


def _forget_state_of_another_warehouse(pipeline: dlt.Pipeline, warehouse: str) -> dlt.Pipeline:
    """Local dlt state belongs to one warehouse: its cursors say what that warehouse received.
    When it describes another one (the destination was switched under the same pipeline name, to a
    new warehouse or back to an earlier one), using its cursors would skip rows this one never
    received: the local state is dropped, and the run takes this warehouse's own state from the
    warehouse itself (dlt keeps a copy there), or starts clean when it has none."""
    warehouse = f"{warehouse} · dataset {pipeline.dataset_name}"
    if not pipeline.first_run:
        known = _warehouse_of_state(pipeline)
        if known is not None and known != warehouse:
            log.warning(
                "the local state of pipeline %s described %s; this run writes %s: that state is set aside and "
                "this warehouse's own state (kept in it) is used",
                pipeline.pipeline_name,
                known,
                warehouse,
            )
            pipeline = pipeline.drop()
        elif known is None and not _has_dataset(pipeline):
            log.info("warehouse has no %s dataset yet: starting from clean local state", pipeline.dataset_name)
            pipeline = pipeline.drop()
    # A load starts by reading this warehouse's own state from it when it is newer (dlt's
    # sync_destination): after a switch, what the warehouse received is what its cursors say.
    pipeline.set_local_state_val(WAREHOUSE_OF_STATE, warehouse)
    return pipeline


def _warehouse_of_state(pipeline: dlt.Pipeline) -> str | None:
    try:
        return str(pipeline.get_local_state_val(WAREHOUSE_OF_STATE))
    except KeyError:  # state written before the marker existed
        return None


def _has_dataset(pipeline: dlt.Pipeline) -> bool:
    try:
        with pipeline.sql_client() as client:
            return bool(client.has_dataset())
    except Exception:
        return True


def check_warehouse(pipeline: dlt.Pipeline) -> None:
    """Open the warehouse once before any provider runs: a warehouse that cannot be written fails
    the run here, once, instead of after every provider's extract."""
    with pipeline.sql_client() as client:
        client.has_dataset()


def tidy_local_state(working_dir: Path) -> list[str]:
    """Repair or discard what killed runs left in dlt's local state (under the run lock, so no
    other run is writing it). Returns one note per thing done.

    - A package both normalized (`load/normalized/<id>`) and still extracted
      (`normalize/extracted/<id>`): the run was killed inside dlt's normalize commit, after the
      atomic rename of the normalized package and before the extracted copy was deleted. The
      normalized package is complete, so the extracted copy is removed (dlt would otherwise fail
      every later run with "Directory not empty" trying to normalize it again).
    - A half-normalized package (`load/new/<id>`): removed; dlt normalizes it again from its
      extracted copy.
    - An extract that never committed (`normalize/<temp>/`): removed; nothing of it was committed,
      and its rows are extracted again.
    - Loaded packages (`load/loaded/<id>`): removed; their rows and state are in the warehouse.
    - A file dlt was writing atomically when the run was killed (its temporary copy, 16 hex
      digits, beside the file it was to replace: the pipeline's state, a schema, a package's state):
      removed; the file it was to replace is intact.
    """
    notes: list[str] = []
    normalize, load = working_dir / "normalize", working_dir / "load"
    extracted, normalized = normalize / "extracted", load / "normalized"
    for folder in (working_dir, working_dir / "schemas", normalize, extracted, load, load / "new", normalized):
        for temp in _atomic_temps(folder):
            temp.unlink(missing_ok=True)
            notes.append(f"a file a stopped run was writing ({temp.relative_to(working_dir)}) was discarded")
    for package in _children(extracted):
        if (normalized / package.name).is_dir():
            shutil.rmtree(package)
            notes.append(f"package {package.name}: normalized when a run was stopped; its extracted copy was removed")
    for package in _children(load / "new"):
        shutil.rmtree(package)
        source = "normalized again from its extract" if (extracted / package.name).is_dir() else "discarded"
        notes.append(f"package {package.name}: half-normalized by a stopped run; {source}")
    for temp in _uncommitted_extracts(working_dir):
        shutil.rmtree(temp)
        notes.append(f"an extract a stopped run never committed ({temp.name}) was discarded")
    delete_loaded_packages(working_dir)
    return notes


def discard_failed_extract(working_dir: Path) -> None:
    """A provider failed in its extract (under the run lock: the only extract in progress):
    what it wrote and never committed is removed now, so the next run finds nothing of a
    stopped run to tidy."""
    for temp in _uncommitted_extracts(working_dir):
        shutil.rmtree(temp, ignore_errors=True)


def _uncommitted_extracts(working_dir: Path) -> list[Path]:
    return [p for p in _children(working_dir / "normalize") if p.name != "extracted" and not p.name.startswith(".")]


def delete_loaded_packages(working_dir: Path) -> None:
    """Completed packages: their rows and state are in the warehouse; dlt keeps them for nothing."""
    for package in _children(working_dir / "load" / "loaded"):
        shutil.rmtree(package, ignore_errors=True)


_ATOMIC_TEMP = re.compile(r"[0-9a-f]{16}")  # dlt's FileStorage.save_atomic: uniq_id(8)


def _atomic_temps(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and _ATOMIC_TEMP.fullmatch(p.name))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


# --- running ----------------------------------------------------------------------------------


class ProgressPrinter:
    """Logs the running provider's progress line every `interval` seconds."""

    def __init__(self, provider: str, interval: float) -> None:
        self.provider, self.interval = provider, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="billing-progress", daemon=True)

    def __enter__(self) -> ProgressPrinter:
        if self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for stats in run_stats.of_provider(self.provider):
                if stats.finished is None:
                    log.info("  … %s", stats.progress_line())


def finish_interrupted_load(pipeline: dlt.Pipeline, target: Where) -> bool:
    """Load what an interrupted run extracted but did not load, before extracting anything new.

    dlt keeps such packages and, when asked to run again, loads them *instead of* the new data.
    Finishing them first means every run also extracts fresh data. The packages carry the dlt
    state of the rows they hold, so cursors and rows arrive together. Returns False when the
    packages cannot be loaded (the destination is failing): nothing else is attempted then.
    """
    if not pipeline.has_pending_data:
        return True
    log.info("→ completing the load of an interrupted run")
    try:
        pipeline.normalize()
        for note in repair_interrupted_appends(pipeline):
            log.info("%s", note)
        loading(pipeline, pipeline.load, "the pending load of an interrupted run")
    except Exception as exc:
        if stop_signal(exc) is not None:
            raise Stopped(stop_signal(exc) or 2) from None
        reason = explain(exc, target) or redact(f"{type(exc).__name__}: {exc}")
        log.error("the pending load of an interrupted run could not be completed: %s", reason)
        return False
    return True


def _raise_if_stopped(exc: BaseException, provider: Provider, batches: Batches | None = None) -> None:
    """Raise `Stopped` when `exc` is how dlt reports a SIGINT/SIGTERM, naming the provider and step
    (and the batches of the account already loaded)."""
    signum = stop_signal(exc)
    if signum is not None:
        stopped = Stopped(signum)
        stopped.provider, stopped.step = provider.name, getattr(exc, "step", "extract")  # type: ignore[attr-defined]
        stopped.batches = batches.loaded if batches is not None else 0  # type: ignore[attr-defined]
        raise stopped from None


def run_provider(
    pipeline: dlt.Pipeline,
    provider: Provider,
    progress_interval: float = config.DEFAULT_PROGRESS_INTERVAL,
    transport: httpx.BaseTransport | None = None,
    target: Where | None = None,
    account: AccountConfig | None = None,
) -> Outcome:
    """Extract, normalize and load one provider account (the base stanza's when `account` is None)
    in one load, or one load per batch of clients (`_run_batches`); never raises for the
    account's own failure (a signal raises `Stopped`, naming the step it stopped).

    `transport`, when given, carries every request of the provider's source (an in-process
    sandbox in tests)."""
    key = account.state_key if account is not None else None
    run_stats.forget(provider.name, key)
    if account is None or account.stanza is None:
        log.info("→ %s (%s)", provider.title, provider.name)
    else:
        log.info("→ %s (%s, account %s)", provider.title, provider.name, account.label)
    status, message = "loaded", ""
    started = utc_now()
    batches: Batches | None = None
    try:
        with ProgressPrinter(provider.name, progress_interval):
            api, driver_account = account_of(provider, account, transport)
            size = config.batch_clients()
            driver_account = dataclasses.replace(
                driver_account,
                batch_clients=size if size > 0 else None,
                holds_no_rows=account_holds_no_rows(pipeline),
            )
            batches = split(account_batches(api, driver_account))
            _run_batches(pipeline, provider, batches, key)
    except Exception as exc:
        _raise_if_stopped(exc, provider, batches)
        discard_failed_extract(Path(pipeline.working_dir))
        status = "failed"
        message = _failure_message(provider, account, exc, target)
        if batches is not None and batches.loaded:
            message += f" (the {batches.loaded} batch(es) of clients committed before the failure stay loaded)"
    except Stopped as stopped:
        stopped.provider, stopped.step = provider.name, "extract"  # type: ignore[attr-defined]
        stopped.batches = batches.loaded if batches is not None else 0  # type: ignore[attr-defined]
        raise
    stats = run_stats.current(provider.name, key)
    if stats:
        stats.finished = time.monotonic()
    return Outcome(provider.name, status, _account_of(account, stats), message, stats, started, utc_now())


def _run_batches(pipeline: dlt.Pipeline, provider: Provider, batches: Batches, key: str | None) -> None:
    """One `pipeline.run` per batch: each batch's rows and the state describing them are one
    load package, loaded before the next batch is extracted, so a failure or kill keeps every
    batch before it (docs/operations.md, "Progress survives failures")."""
    try:
        while not batches.finished:
            resource = dlt.resource(batches.batch(), name=f"{provider.name}_billing")
            batch = DltSource(dlt.Schema(provider.name), provider.name, [resource])
            file_format = loader_file_format(pipeline.destination)
            loading(pipeline, lambda: pipeline.run(batch, loader_file_format=file_format), provider.name)  # noqa: B023
            batches.loaded += 1
            if (stats := run_stats.current(provider.name, key)) is not None:
                stats.commit()
            stop.check()  # between two batches: the next one is not started
    finally:
        batches.close()


def account_of(
    provider: Provider, account: AccountConfig | None, transport: httpx.BaseTransport | None = None
) -> tuple[Api, Account]:
    """The driver's `Api` and `Account` of one configured account (the base stanza's when
    `account` is None), from its settings; `transport`, when given, carries its requests."""
    values = account.values() if account is not None else provider.values()
    api, driver_account = provider.account(values)
    if transport is not None:
        driver_account = dataclasses.replace(driver_account, transport=transport)
    return api, driver_account


def _account_of(account: AccountConfig | None, stats: run_stats.RunStats | None) -> str:
    """The `account` of an outcome: what the run labelled its rows with, else what configuration says."""
    if stats is not None and stats.account:
        return stats.account
    if account is None:
        return ""
    return account.value or (account.label if account.stanza is not None else "")


def _failure_message(
    provider: Provider, account: AccountConfig | None, exc: BaseException, target: Where | None
) -> str:
    explained = explain(exc, target) if target is not None else None
    message = f"{provider.name}: {explained}" if explained else describe_failure(provider, exc)
    if account is None or account.stanza is None:
        return message
    message = account.hint(message)
    if not message.startswith(f"{provider.name} ["):
        message = f"{account.describe()}: {message.removeprefix(f'{provider.name}: ')}"
    return message


def run_accounts(
    pipeline: dlt.Pipeline,
    provider: Provider,
    accounts: list[AccountConfig],
    concurrency: int,
    progress_interval: float = config.DEFAULT_PROGRESS_INTERVAL,
    transport: httpx.BaseTransport | None = None,
    target: Where | None = None,
) -> list[Outcome]:
    """Several accounts of one provider, one `Outcome` each; one failing never stops another.

    With `account_concurrency` 1 (or one account), one load per account (per batch of clients,
    see `_run_batches`), one after another. Otherwise the accounts are extracted together, up to
    `concurrency` at once, in one load: each account is one parallelized resource of one dlt
    source (dlt extracts a source's parallelized resources in its worker pool; the pipeline
    itself is not thread-safe, so there is one extract, not one per thread). A failing account's
    resource ends quietly: its incremental state is put back as it was before the run, so the
    next run reads again what it read (the rows it already read are loaded; they are the API's
    current ones), and the other accounts' rows and state load as usual. With `batch_clients`,
    this repeats in rounds: each round extracts the next batch of every account not finished,
    and loads them together; a failing account keeps the batches of earlier rounds.
    """
    if concurrency <= 1 or len(accounts) <= 1:
        return [run_provider(pipeline, provider, progress_interval, transport, target, a) for a in accounts]
    return _run_together(pipeline, provider, accounts, concurrency, progress_interval, transport, target)


def _run_together(
    pipeline: dlt.Pipeline,
    provider: Provider,
    accounts: list[AccountConfig],
    concurrency: int,
    progress_interval: float,
    transport: httpx.BaseTransport | None,
    target: Where | None,
) -> list[Outcome]:
    log.info("→ %s (%s, %d accounts, up to %d at once)", provider.title, provider.name, len(accounts), concurrency)
    started = utc_now()
    failures: dict[str, BaseException] = {}
    streams: list[_Stream] = []
    values = {a.value for a in accounts if a.value}
    for account in accounts:
        run_stats.forget(provider.name, account.state_key)
    try:
        with ProgressPrinter(provider.name, progress_interval):
            for account in accounts:
                try:
                    api, driver_account = account_of(provider, account, transport)
                except Exception as exc:
                    if stop_signal(exc) is not None:
                        raise
                    failures[account.label] = exc
                    continue
                streams.append(_isolated(provider, account, api, driver_account, failures, values))
            while active := [s for s in streams if not s.batches.finished]:
                pipeline.sync_destination()
                pipeline.extract(
                    DltSource(dlt.Schema(provider.name), provider.name, [s.resource() for s in active]),
                    workers=concurrency,
                    loader_file_format=loader_file_format(pipeline.destination),
                )
                pipeline.normalize()
                loading(pipeline, pipeline.load, provider.name)
                for account in accounts:
                    if (stats := run_stats.current(provider.name, account.state_key)) is not None:
                        stats.commit()
    except Exception as exc:
        _raise_if_stopped(exc, provider)
        discard_failed_extract(Path(pipeline.working_dir))
        for account in accounts:
            failures.setdefault(account.label, exc)
    except Stopped as stopped:
        stopped.provider, stopped.step = provider.name, "extract"  # type: ignore[attr-defined]
        raise
    finally:
        for stream in streams:
            stream.batches.close()
    outcomes: list[Outcome] = []
    for account in accounts:
        stats = run_stats.current(provider.name, account.state_key)
        if stats is not None and stats.finished is None:
            stats.finished = time.monotonic()
        failure = failures.get(account.label)
        status = "failed" if failure is not None else "loaded"
        message = _failure_message(provider, account, failure, target) if failure is not None else ""
        outcomes.append(Outcome(provider.name, status, _account_of(account, stats), message, stats, started, utc_now()))
    return outcomes


@dataclasses.dataclass
class _Stream:
    """One account of `_run_together`: its batches, and the resource of its next batch."""

    batches: Batches
    resource: Any


def _isolated(
    provider: Provider,
    account: AccountConfig,
    api: Api,
    driver_account: Account,
    failures: dict[str, BaseException],
    values: set[str],
) -> _Stream:
    """The account's stream: per round, a resource renamed for the account, parallelized, and
    ending quietly on the account's own failure with its state as before the round."""
    size = config.batch_clients()
    batches = split(account_batches(api, dataclasses.replace(driver_account, batch_clients=size if size > 0 else None)))
    mine = account.value

    def owns(key: str) -> bool:
        # An account whose label the API tells owns every key no other account of the run owns.
        return key == mine if mine else key not in values and key != "resources"

    def items() -> Any:
        state = dlt.current.source_state()
        before = {k: copy.deepcopy(v) for k, v in list(state.items()) if owns(k)}
        try:
            yield from batches.batch()
        except Exception as exc:
            if stop_signal(exc) is not None or isinstance(exc, Stopped):
                raise
            failures[account.label] = exc
            batches.close()
            for key in [k for k in list(state) if owns(k)]:
                del state[key]
            state.update(before)
        finally:
            stats = run_stats.current(provider.name, account.state_key)
            if stats is not None and batches.finished:
                stats.finished = time.monotonic()

    def resource() -> Any:
        return dlt.resource(items, name=f"{provider.name}_billing_{account.label}", parallelized=True)

    return _Stream(batches, resource)


def record_runs(pipeline: dlt.Pipeline, run_id: str, outcomes: list[Outcome], target: Where, also: Any = None) -> None:
    """Append one `pipeline_runs` row per provider account (docs/canonical-model.md), through dlt,
    in its own schema so that no provider's schema (and no `dlt drop` of one) holds the table;
    `also` (the run's `data_checks`, docs/checks.md) is loaded with them."""
    rows = [outcome_row(run_id, o) for o in outcomes]
    resources = (
        [dlt.resource(rows, name=PIPELINE_RUNS, write_disposition="append", columns=RUNS_COLUMNS)] if rows else []
    )
    resources += [also] if also is not None else []
    if not resources:
        return
    try:
        loading(pipeline, lambda: pipeline.run(resources, schema=dlt.Schema(RUNS_SCHEMA)), PIPELINE_RUNS)
    except Exception as exc:
        signum = stop_signal(exc)
        if signum is not None:
            raise Stopped(signum) from None
        reason = explain(exc, target) or redact(f"{type(exc).__name__}: {exc}")
        log.warning("this run's outcome could not be written to %s: %s", PIPELINE_RUNS, reason)


RUNS_COLUMNS: dict[str, Any] = {
    "run_id": {"data_type": "text", "nullable": False},
    "provider": {"data_type": "text", "nullable": False},
    "account": {"data_type": "text", "nullable": False},
    "started_at": {"data_type": "timestamp", "timezone": True},
    "finished_at": {"data_type": "timestamp", "timezone": True},
    "status": {"data_type": "text", "nullable": False},
    **{
        name: {"data_type": "bigint"}
        for name in ("invoices", "lines", "clients", "unchanged", "unmapped", "deleted", "requests", "retries")
    },
    "message": {"data_type": "text"},
    "listed": {"data_type": "bigint"},  # docs/checks.md, `volume`
}


def outcome_row(run_id: str, o: Outcome) -> dict[str, Any]:
    """The `pipeline_runs` row of an outcome. A failed account counts the rows its committed
    loads hold, not the rows it read before failing."""
    s = o.stats
    counts = {
        name: o.count(name)
        for name in ("invoices", "lines", "clients", "unchanged", "unmapped", "deleted", "requests", "retries")
    }
    return {
        "run_id": run_id,
        "provider": o.provider,
        "account": o.account or (s.account if s else "") or "-",
        "started_at": o.started_at,
        "finished_at": o.finished_at,
        "status": o.status,
        **counts,
        "message": o.message or None,
        "listed": s.listed_invoices if s is not None else None,
    }


@dataclass
class RunReport:
    """What one `load` did, for a caller other than the command line (an orchestrator running one
    account, see orchestration/): filled in as the run goes; `run_id` stays empty when the run
    never started (a usage error, a held lock)."""

    run_id: str = ""
    destination: str = ""
    pipeline_name: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    checks: list[checks.Check] = field(default_factory=list)  # the data checks of its accounts
    history_rows: dict[tuple[str, str], int] = field(default_factory=dict)  # (provider, account) → new rows


@contextmanager
def locked(target: Where, pipeline_name: str) -> Iterator[None]:
    with RunLocks(lock_paths(target, pipeline_name)):
        yield


def load(
    requested: str | None = None,
    *,
    pipeline_name: str | None = None,
    progress_interval: float = config.DEFAULT_PROGRESS_INTERVAL,
    transports: Mapping[str, httpx.BaseTransport] | None = None,
    allow_mass_delete: bool = False,
    report: RunReport | None = None,
) -> int:
    """Run every selected provider and print the summary. Returns the exit code.

    `transports` maps provider names to an httpx transport for their requests (tests);
    `allow_mass_delete` confirms, for this run, deletions the guard would refuse; `report`, when
    given, receives the run id, the destination and every account's outcome."""
    providers = discover()
    outcomes: list[Outcome] = report.outcomes if report is not None else []
    runnable: list[tuple[Provider, list[AccountConfig]]] = []
    skipped: list[Outcome] = []
    try:
        selected, wanted, explicit = config.select_accounts(providers, requested)
        http.configure(config.retry_policy())
        concurrency = config.account_concurrency()
        config.batch_clients()  # a wrong value stops the run here (exit 2)
        checks.settings()  # so does a wrong [checks] value
        reporting_currency()  # likewise a reporting currency that is not an ISO 4217 code with a minor unit
        name = config.pipeline_name(pipeline_name)
        target = where(name)
        for provider in selected:
            ready: list[AccountConfig] = []
            for account in config.choose_accounts(provider, wanted.get(provider.name)):
                reason = config.account_not_configured(account)
                if reason is None:
                    config.max_delete_fraction(account)  # a wrong value stops the run before it starts
                    ready.append(account)
                elif account.stanza is None:
                    log.info("skip %s: %s", provider.name, reason)
                    if explicit:
                        outcomes.append(Outcome(provider.name, "failed", message=reason))
                    else:
                        skipped.append(Outcome(provider.name, "skipped", message=reason))
                else:
                    log.info("skip %s: %s", account.name, reason)
                    message = f"{account.describe()}: {reason}"
                    outcomes.append(Outcome(provider.name, "failed", account.value or account.label, message))
            if ready:
                runnable.append((provider, ready))
    except config.UsageError as exc:
        return refused(str(exc), providers)
    if not runnable:
        return refused(config.nothing_configured(providers), providers)
    clash = config.duckdb_name_clash(config.destination_type(), duckdb_file())
    if clash is not None:
        return refused(clash, providers)
    try:
        with locked(target, name), history.observing():
            return _load_locked(
                target,
                name,
                runnable,
                outcomes,
                skipped,
                progress_interval,
                transports,
                concurrency,
                allow_mass_delete,
                report,
            )
    except LockHeld as held:
        log.error("%s", held)
        return EXIT_LOCKED
    except OSError as exc:
        log.error("%s", explain(exc, target) or cannot_lock(exc))
        return EXIT_FAILED


def refused(reason: str, providers: Mapping[str, Provider]) -> int:
    """A load that stops before it starts (exit 2): the unknown configuration keys first (a
    misspelt secret may be why), then the reason."""
    warn_unknown_keys(providers)
    log.error("%s", reason)
    return EXIT_USAGE


def warn_unknown_keys(providers: Mapping[str, Provider] | None = None) -> None:
    """A warning per misspelt or unknown configuration key (pipelines/keys.py); never a failure."""
    for line in keys.unknown(providers):
        log.warning("%s", line)


def warn_without_settings_folder(target: Where) -> None:
    """A run about to create a new DuckDB warehouse where no `.dlt/` folder is (a cron line
    without `cd`, say) is said so: rarely meant, and otherwise silent."""
    try:
        settings = Path(dlt.current.run_context().settings_dir).absolute()
    except Exception:  # a settings file dlt cannot read: dlt says so
        return
    if settings.is_dir() or target.database is None or target.database.exists():
        return
    log.warning(
        "no .dlt/ folder in %s: this run reads its settings from environment variables only and creates a new "
        "warehouse, %s. If your project is elsewhere, run from its folder (cron: `cd /path/to/project && "
        ".venv/bin/billing-elt load`).",
        settings.parent,
        target.database,
    )


def cannot_lock(exc: OSError) -> str:
    return redact(
        f"the run lock {exc.filename} cannot be created: {exc.strerror}. The lock lives beside the DuckDB "
        "file and in the dlt pipelines folder; both folders must be writable by the user running the load."
    )


def _load_locked(
    target: Where,
    name: str,
    runnable: list[tuple[Provider, list[AccountConfig]]],
    outcomes: list[Outcome],
    skipped: list[Outcome],
    progress_interval: float,
    transports: Mapping[str, httpx.BaseTransport] | None,
    concurrency: int = config.DEFAULT_ACCOUNT_CONCURRENCY,
    allow_mass_delete: bool = False,
    report: RunReport | None = None,
) -> int:
    started = utc_now()
    run_id = new_run_id(started)
    structure.begin_run(run_id)  # the run that first sees a change in the payloads (schema_changes)
    if report is not None:
        report.run_id, report.destination, report.pipeline_name = run_id, describe_target(target), name
    log.info(
        "billing-elt %s · run %s · %s · dataset %s · pipeline %s (%s) · accounts: %s",
        version(),
        run_id,
        describe_target(target),
        config.dataset_name(),
        name,
        target.pipelines_dir / name,
        ", ".join(_account_name(p, a) for p, accounts in runnable for a in accounts),
    )
    warn_unknown_keys()
    warn_without_settings_folder(target)
    working_dir = target.pipelines_dir / name
    if not ready_to_write(target, working_dir):
        return EXIT_FAILED
    journal = Journal([p for p, _ in runnable])
    unrun = [*outcomes, *skipped]  # accounts refused before the run started: recorded at its end
    run_trace: RunTrace | None = None
    holding = ExitStack()
    checked: list[checks.Check] = []
    halted = ""
    try:
        try:
            held = holding.enter_context(hold_duckdb_file(target.database))
            pipeline = make_pipeline(name, held)
            run_trace = collect(pipeline)
            stop.check()
            check_warehouse(pipeline)
        except Exception as exc:
            if stop_signal(exc) is not None:
                raise Stopped(stop_signal(exc) or 2) from None
            log.error("%s", explain(exc, target) or cannot_open(exc))
            return EXIT_FAILED
        stop.check()
        if not finish_interrupted_load(pipeline, target):
            return EXIT_FAILED
        history.begin(pipeline, run_id, started)
        for provider, accounts in runnable:
            stop.check()  # no provider starts once the run is asked to stop
            if target.disk_full:  # every later step would fail the same way: the run ends here
                break
            journal.start(provider.name)
            transport = (transports or {}).get(provider.name)
            done = len(outcomes)
            if len(accounts) == 1 and accounts[0].stanza is None:
                outcomes.append(run_provider(pipeline, provider, progress_interval, transport, target))
            else:
                outcomes.extend(
                    run_accounts(pipeline, provider, accounts, concurrency, progress_interval, transport, target)
                )
            if target.disk_full:
                break
            journal.step = "deletions"
            settle_deletions(pipeline, provider, accounts, outcomes[done:], allow_mass_delete)
            journal.step = "history"
            history.settle(pipeline, outcomes[done:], report)
            journal.step = "record"
            # Each provider's outcome is recorded as soon as it is settled: a stop later in the
            # run leaves pipeline_runs saying exactly what finished.
            record_runs(pipeline, run_id, outcomes[done:], target)
            journal.finish(outcomes[done:])
        stop.check()
        if target.disk_full:
            halted = journal.not_tried_for_full_disk()
        else:
            providers_done = utc_now()  # the checks judge the warehouse as the providers left it
            journal.step = "rates"
            rates = load_rates(pipeline, (transports or {}).get(RATES_SOURCE), target)  # never fails the run
            journal.step = "checks"
            rows = [outcome_row(run_id, o) for o in [*outcomes, *skipped]]
            checked = checks.after_load(pipeline, rows, target, now=providers_done)
            if report is not None:
                report.checks = checked
            record_runs(pipeline, run_id, unrun, target, checks.resource(run_id, utc_now(), checked))
            stop.check()
            journal.step = "views"
            views_ok = refresh_after_run(pipeline)
            if held is not None and not _checkpoint(held, target):
                views_ok = False
            delete_loaded_packages(working_dir)
        run_trace.save(pipeline)
        stop.check()
    except KeyboardInterrupt as exc:
        # ours, or dlt's SignalReceivedException from a step that writes dlt state (the deletion
        # marks, the history): the same stop, told the same way
        stopped = exc if isinstance(exc, Stopped) else Stopped(stop_signal(exc) or 2)
        if run_trace is not None:
            run_trace.save(pipeline)
        log.error("%s", journal.stopped_line(stopped))
        return 128 + stopped.signum
    finally:
        holding.close()
    for level, line in summary_lines(outcomes, run_id):
        log.log(level, "%s", line)
    if halted:
        log.error("%s", halted)
        return EXIT_FAILED
    rates.log_summary()
    for line in checks.summary_lines(checked):
        log.info("%s", line)
    return EXIT_OK if views_ok and all(o.status == "loaded" for o in outcomes) else EXIT_FAILED


def _checkpoint(held: duckdb.DuckDBPyConnection, target: Where) -> bool:
    """Write what DuckDB holds in its log into the file itself before the run ends, so that a
    file system that cannot take it (a full disk) is said now, once, not at some later open."""
    try:
        held.execute("CHECKPOINT")
    except duckdb.Error as exc:
        log.error("%s", explain(exc, target) or cannot_open(exc))
        return False
    return True


class Journal:
    """What a run has done so far, for the one line a stopped run ends with: which provider was
    at which step, and what is committed and recorded."""

    def __init__(self, providers: list[Provider]) -> None:
        self.providers = [p.name for p in providers]
        self.current: str | None = None
        self.step = ""
        self.finished: list[Outcome] = []

    def start(self, provider: str) -> None:
        self.current, self.step = provider, "extract"

    def finish(self, outcomes: list[Outcome]) -> None:
        self.finished.extend(outcomes)
        self.current, self.step = None, ""

    def not_tried_for_full_disk(self) -> str:
        """What a run ended by a full disk (told once, in the failure itself) did not do."""
        parts = []
        if self.current is not None:
            parts.append(f"{self.current}'s deletions, invoice history and outcome in pipeline_runs")
        seen = {o.provider for o in self.finished} | {self.current}
        parts.extend(p for p in self.providers if p not in seen)
        parts.append("the reference rates, the data checks and the views")
        return (
            f"the disk is full: the run ended there. Not tried: {'; '.join(parts)}. Once there is space, the next "
            "run completes what is pending and does all of it."
        )

    def stopped_line(self, stopped: Stopped) -> str:
        import signal

        signame = signal.Signals(stopped.signum).name
        provider = getattr(stopped, "provider", None) or self.current
        step = getattr(stopped, "step", None) if getattr(stopped, "provider", None) else self.step
        batches = getattr(stopped, "batches", 0)
        if provider is None:
            what = "no provider was running"
        elif step == "extract" and batches:
            what = (
                f"{provider} was stopped in its extract after {batches} committed batch(es) of clients: those are "
                "kept, and the next run resumes with the clients not done"
            )
        elif step == "extract":
            what = f"{provider} was stopped in its extract: nothing of it was committed, the next run reads it again"
        elif step == "normalize":
            what = f"{provider} was stopped in its normalize: its extract is kept and loaded first by the next run"
        elif step == "load":
            what = f"{provider} was stopped in its load: the next run completes that load before anything else"
        elif step == "deletions":
            what = (
                f"{provider} was loaded; its deletions were not all marked (the next complete listing marks them) "
                "and its outcome was not recorded in pipeline_runs"
            )
        elif step == "history":
            what = (
                f"{provider} was loaded and its deletions marked; invoices it holds without history get their "
                "first row from the next run, and its outcome was not recorded in pipeline_runs"
            )
        elif step == "record":
            what = f"{provider} was loaded; its outcome was not recorded in pipeline_runs"
        elif step == "checks":
            what = (
                "every provider was loaded and recorded; the data checks were not recorded and the views not "
                "refreshed (the next run does both)"
            )
        else:
            what = "every provider was loaded and recorded; the views were not refreshed (the next run does it)"
        parts = [f"stopped by {signame}: {what}"]
        loaded = [_outcome_name(o) for o in self.finished if o.status == "loaded"]
        failed = [_outcome_name(o) for o in self.finished if o.status != "loaded"]
        if loaded:
            parts.append(f"loaded and recorded: {', '.join(loaded)}")
        if failed:
            parts.append(f"failed and recorded: {', '.join(failed)}")
        seen = {o.provider for o in self.finished} | ({provider} if provider else set())
        not_run = [p for p in self.providers if p not in seen]
        if not_run and step not in ("rates", "checks", "views"):
            parts.append(f"not run: {', '.join(not_run)}")
        return "; ".join(parts) + f". Exit {128 + stopped.signum}."


def _outcome_name(outcome: Outcome) -> str:
    return f"{outcome.provider} [{outcome.account}]" if outcome.account else outcome.provider


def ready_to_write(target: Where, working_dir: Path) -> bool:
    """Under the run lock, before this process opens the DuckDB file (see
    failures.check_duckdb_file): say in one paragraph why the warehouse or dlt's local state
    cannot be written (False), else repair what killed runs left there (True)."""
    unwritable = check_pipelines_dir(target) or check_duckdb_file(target)
    if unwritable is not None:
        log.error("%s", unwritable)
        return False
    for note in tidy_local_state(working_dir):
        log.warning("%s", note)
    return True


def _account_name(provider: Provider, account: AccountConfig) -> str:
    """`kitchen [acme]` as before for the base stanza; a further account by its value too."""
    if account.stanza is None:
        return config.account_names(provider)
    return account.describe()


def cannot_open(exc: BaseException) -> str:
    return redact(f"the warehouse cannot be opened: {type(exc).__name__}: {exc}")


# --- reset ------------------------------------------------------------------------------------


def reset(name: str, *, pipeline_name: str | None = None) -> int:
    """Delete one provider's (or one account's, `provider:label`) rows from the canonical tables
    and forget its dlt state.

    Other providers' and accounts' rows and state are untouched. The next load of what was reset
    starts over. Before any load there is nothing to reset: it says so and creates nothing.
    """
    providers = discover()
    provider_name, colon, label = (part.strip() for part in name.partition(":"))
    provider_name = provider_name.lower()
    if provider_name not in providers:
        log.error("unknown provider %r; choose from %s", provider_name, ", ".join(providers))
        return EXIT_USAGE
    account: str | None = None
    try:
        if colon:
            account = stored_account(providers[provider_name], label)
        pipeline_name = config.pipeline_name(pipeline_name)
        target = where(pipeline_name)
    except config.UsageError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    what = provider_name if account is None else f"{provider_name} [{account}]"
    local = target.pipelines_dir / pipeline_name
    if (target.database is not None and not target.database.exists()) or (
        target.database is None and not local.exists()
    ):
        log.info("nothing to reset: no load has run into %s yet", describe_target(target))
        return EXIT_OK
    try:
        with locked(target, pipeline_name):
            return _reset_locked(provider_name, pipeline_name, target, account)
    except LockHeld as held:
        log.error("%s", held)
        return EXIT_LOCKED
    except Stopped as stopped:
        log.error("stopped by signal %d: the reset of %s did not complete; run it again", stopped.signum, what)
        return 128 + stopped.signum
    except OSError as exc:
        log.error("%s", explain(exc, target) or cannot_lock(exc))
        return EXIT_FAILED


def stored_account(provider: Provider, label: str) -> str:
    """The `account` value of `provider:label`: a configured account's (by label or value), else
    the label itself taken as an account value (an account whose stanza was removed, or one whose
    value the API told).

    Raises:
        config.UsageError: an empty or malformed label, or one naming an account whose value only
            the API knows.
    """
    if not label or not config.SELECTED_NAME.match(label):
        raise config.UsageError(
            f"{provider.name}:{label} does not name an account: use {provider.name}:<label>, the label in "
            "lower-case letters, digits and _"
        )
    try:
        configured = config.accounts(provider)
    except config.UsageError:
        configured = []
    match = next((a for a in configured if a.label == label), None) or next(
        (a for a in configured if a.value == label), None
    )
    if match is None:
        return label
    if match.value is None:
        raise config.UsageError(
            f"{match.name} learns its account from the API: reset it by that value, as the summary and the "
            f"account column show it ({provider.name}:<account>)"
        )
    return match.value


def _reset_locked(name: str, pipeline_name: str, target: Where, account: str | None = None) -> int:
    with ExitStack() as holding:
        return _reset_held(name, pipeline_name, target, account, holding)


def _reset_held(name: str, pipeline_name: str, target: Where, account: str | None, holding: ExitStack) -> int:
    what = name if account is None else f"{name} [{account}]"
    for note in tidy_local_state(target.pipelines_dir / pipeline_name):
        log.warning("%s", note)
    try:
        held = holding.enter_context(hold_duckdb_file(target.database))
        pipeline = make_pipeline(pipeline_name, held)
        check_warehouse(pipeline)
    except Exception as exc:
        log.error("%s", explain(exc, target) or cannot_open(exc))
        return EXIT_FAILED
    # An interrupted run's rows must land before the reset, or they would come back after it.
    if not finish_interrupted_load(pipeline, target):
        return EXIT_FAILED
    deleted = 0
    where_sql = "provider = %s" if account is None else "provider = %s AND account = %s"
    params = (name,) if account is None else (name, account)
    try:
        with pipeline.sql_client() as client:
            if client.has_dataset():
                for table in (INVOICE_ITEMS, INVOICES, CLIENTS, UNMAPPED, SCHEMA_CHANGES, HISTORY):
                    qualified = client.make_qualified_table_name(table)
                    try:
                        rows = client.execute_sql(f"SELECT count(*) FROM {qualified} WHERE {where_sql}", *params)
                        client.execute_sql(f"DELETE FROM {qualified} WHERE {where_sql}", *params)
                        deleted += int(rows[0][0]) if rows and table != HISTORY else 0  # the history goes uncounted
                    except Exception as exc:  # the table may not exist yet
                        log.debug("reset %s: %s", table, exc)
    except Exception as exc:
        log.error("%s", explain(exc, target) or redact(f"could not reach the warehouse: {exc}"))
        return EXIT_FAILED
    with pipeline.managed_state(extract_state=True) as state:
        if account is None:
            state.get("sources", {}).pop(name, None)
        else:
            state.get("sources", {}).get(name, {}).pop(account, None)
    # The cleared state goes to the warehouse now, so the next load starts this provider over.
    pipeline.normalize()
    loading(pipeline, pipeline.load, f"reset {what}")
    delete_loaded_packages(target.pipelines_dir / pipeline_name)
    log.info("reset %s: deleted %s row(s) and its incremental state", what, f"{deleted:,}")
    return EXIT_OK if refresh_after_run(pipeline) else EXIT_FAILED
