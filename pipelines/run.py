"""A run: every selected provider account extracted, normalized and loaded, one after another.

The dlt pipeline (one per warehouse) is made from configuration; an interrupted run's pending
load is finished before anything new is extracted; each provider runs on its own, so that one
failing provider never stops the others.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import dlt
import httpx

from pipelines import config
from pipelines.registry import discover
from pipelines.summary import Outcome, describe_failure, format_summary
from pipelines.views import refresh_after_run
from pipelines.warehouse import destination, loader_file_format
from sources.shared import stats as run_stats
from sources.shared.model import CLIENTS, INVOICE_ITEMS, INVOICES
from sources.shared.provider import Provider
from sources.shared.redact import redact

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("billing")


def make_pipeline(pipeline_name: str | None = None) -> dlt.Pipeline:
    """The dlt pipeline, its destination and dataset read from dlt config with our defaults.

    Keys: `pipeline_name` (default `billing`), `destination_type` (default `duckdb`),
    `dataset_name` (default `billing`); for DuckDB the file is `destination.duckdb.credentials`.
    """
    pipeline = dlt.pipeline(
        pipeline_name=config.pipeline_name(pipeline_name),
        destination=destination(config.destination_type()),
        dataset_name=config.dataset_name(),
    )
    return _forget_state_of_another_warehouse(pipeline)


def _forget_state_of_another_warehouse(pipeline: dlt.Pipeline) -> dlt.Pipeline:
    """Local dlt state belongs to one warehouse. When the configured warehouse has no dataset
    yet (a new DuckDB file, say) but local state exists, that state describes another warehouse:
    using its cursors would skip rows the new one never received. Start clean instead."""
    if pipeline.first_run:
        return pipeline
    try:
        with pipeline.sql_client() as client:
            if client.has_dataset():
                return pipeline
    except Exception:
        return pipeline
    log.info("warehouse has no %s dataset yet: starting from clean local state", pipeline.dataset_name)
    return pipeline.drop()


# --- running --------------------------------------------------------------------------------


class ProgressPrinter:
    """Prints the running provider's progress line every `interval` seconds."""

    def __init__(self, provider: str, interval: float, stream: Any = sys.stderr) -> None:
        self.provider, self.interval, self.stream = provider, interval, stream
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
            stats = run_stats.current(self.provider)
            if stats is not None:
                print(f"  … {stats.progress_line()}", file=self.stream, flush=True)


def finish_interrupted_load(pipeline: dlt.Pipeline) -> bool:
    """Load what an interrupted run extracted but did not load, before extracting anything new.

    dlt keeps such packages and, when asked to run again, loads them *instead of* the new data.
    Finishing them first means every run also extracts fresh data. The packages carry the dlt
    state of the rows they hold, so cursors and rows arrive together. Returns False when the
    packages cannot be loaded (the destination is failing): nothing else is attempted then.
    """
    if not pipeline.has_pending_data:
        return True
    print("→ completing the load of an interrupted run", file=sys.stderr, flush=True)
    try:
        pipeline.normalize()
        pipeline.load()
    except Exception as exc:
        print(
            f"error: the pending load of an interrupted run could not be completed: {redact(str(exc))}", file=sys.stderr
        )
        return False
    return True


def run_provider(
    pipeline: dlt.Pipeline,
    provider: Provider,
    progress_interval: float = config.DEFAULT_PROGRESS_INTERVAL,
    transport: httpx.BaseTransport | None = None,
) -> Outcome:
    """Extract, normalize and load one provider; never raises for a provider's own failure.

    `transport`, when given, carries every request of the provider's source (an in-process
    sandbox in tests)."""
    run_stats.forget(provider.name)
    print(f"→ {provider.title} ({provider.name})", file=sys.stderr, flush=True)
    status, message = "loaded", ""
    try:
        with ProgressPrinter(provider.name, progress_interval):
            source = provider.source(transport=transport) if transport is not None else provider.source()
            pipeline.run(source, loader_file_format=loader_file_format(pipeline.destination))
    except Exception as exc:
        status, message = "failed", describe_failure(provider, exc)
    stats = run_stats.current(provider.name)
    if stats:
        stats.finished = time.monotonic()
    return Outcome(provider.name, status, stats.account if stats else "", message, stats)


def load(
    requested: str | None = None,
    *,
    pipeline_name: str | None = None,
    progress_interval: float = config.DEFAULT_PROGRESS_INTERVAL,
    transports: Mapping[str, httpx.BaseTransport] | None = None,
) -> int:
    """Run every selected provider and print the summary. Returns the exit code.

    `transports` maps provider names to an httpx transport for their requests (tests)."""
    providers = discover()
    try:
        selected, explicit = config.select(providers, requested)
    except config.UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    outcomes: list[Outcome] = []
    runnable: list[Provider] = []
    for provider in selected:
        reason = config.not_configured(provider)
        if reason is None:
            runnable.append(provider)
        else:
            print(f"skip {provider.name}: {reason}", file=sys.stderr)
            if explicit:
                outcomes.append(Outcome(provider.name, "failed", message=reason))
    if not runnable:
        print(f"error: {config.nothing_configured(providers)}", file=sys.stderr)
        return EXIT_USAGE
    pipeline = make_pipeline(pipeline_name)
    if not finish_interrupted_load(pipeline):
        return EXIT_FAILED
    for provider in runnable:
        transport = (transports or {}).get(provider.name)
        outcomes.append(run_provider(pipeline, provider, progress_interval, transport))
    print(format_summary(outcomes), file=sys.stderr)
    views_ok = refresh_after_run(pipeline)
    return EXIT_OK if views_ok and all(o.status == "loaded" for o in outcomes) else EXIT_FAILED


def reset(name: str, *, pipeline_name: str | None = None) -> int:
    """Delete one provider's rows from the canonical tables and forget its dlt state.

    Other providers' rows and state are untouched. The next load of that provider starts over.
    """
    providers = discover()
    if name not in providers:
        print(f"error: unknown provider {name!r}; choose from {', '.join(providers)}", file=sys.stderr)
        return EXIT_USAGE
    pipeline = make_pipeline(pipeline_name)
    # An interrupted run's rows must land before the reset, or they would come back after it.
    if not finish_interrupted_load(pipeline):
        return EXIT_FAILED
    deleted = 0
    try:
        with pipeline.sql_client() as client:
            if client.has_dataset():
                for table in (INVOICE_ITEMS, INVOICES, CLIENTS):
                    qualified = client.make_qualified_table_name(table)
                    try:
                        rows = client.execute_sql(f"SELECT count(*) FROM {qualified} WHERE provider = %s", name)
                        client.execute_sql(f"DELETE FROM {qualified} WHERE provider = %s", name)
                        deleted += int(rows[0][0]) if rows else 0
                    except Exception as exc:  # the table may not exist yet
                        log.debug("reset %s: %s", table, exc)
    except Exception as exc:
        print(f"error: could not reach the warehouse: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    with pipeline.managed_state(extract_state=True) as state:
        state.get("sources", {}).pop(name, None)
    # The cleared state goes to the warehouse now, so the next load starts this provider over.
    pipeline.normalize()
    pipeline.load()
    print(f"reset {name}: deleted {deleted:,} row(s) and its incremental state", file=sys.stderr)
    return EXIT_OK if refresh_after_run(pipeline) else EXIT_FAILED
