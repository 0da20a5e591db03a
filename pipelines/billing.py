"""Load every configured invoicing provider into the warehouse.

    python -m pipelines.billing                 # every provider whose secrets are set
    PROVIDERS=invoicexpress,kitchen python -m pipelines.billing
    python -m pipelines.billing reset kitchen   # forget one provider's rows and state

Exit codes: 0 when every selected provider loaded; 1 when at least one failed; 2 when there
was nothing to run or the command line was wrong (unknown provider, nothing configured).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException

from pipelines.registry import discover
from pipelines.warehouse import destination, loader_file_format
from sources.shared import stats as run_stats
from sources.shared.errors import BillingError
from sources.shared.model import CLIENTS, INVOICE_ITEMS, INVOICES
from sources.shared.provider import Provider
from sources.shared.redact import install_log_redaction, redact

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
E = TypeVar("E", bound=BaseException)
DEFAULT_PIPELINE = "billing"
DEFAULT_DATASET = "billing"
DEFAULT_DESTINATION = "duckdb"

log = logging.getLogger("billing")


@dataclass
class Outcome:
    """How one provider's run ended."""

    provider: str
    status: str  # loaded | failed | skipped
    account: str = ""
    message: str = ""
    stats: run_stats.RunStats | None = None


class UsageError(Exception):
    """A wrong command line or configuration that stops the run before it starts."""


# --- configuration ------------------------------------------------------------------------


def _config(key: str, default: str) -> str:
    value: Any = dlt.config.get(key)
    return str(value) if value not in (None, "") else default


def make_pipeline(pipeline_name: str | None = None) -> dlt.Pipeline:
    """The dlt pipeline, its destination and dataset read from dlt config with our defaults.

    Keys: `pipeline_name` (default `billing`), `destination_type` (default `duckdb`),
    `dataset_name` (default `billing`); for DuckDB the file is `destination.duckdb.credentials`.
    """
    name = pipeline_name or _config("pipeline_name", DEFAULT_PIPELINE)
    pipeline = dlt.pipeline(
        pipeline_name=name,
        destination=destination(_config("destination_type", DEFAULT_DESTINATION)),
        dataset_name=_config("dataset_name", DEFAULT_DATASET),
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


def select(providers: dict[str, Provider], requested: str | None) -> tuple[list[Provider], bool]:
    """The providers to run and whether the user named them explicitly.

    Raises:
        UsageError: a requested name is not a provider.
    """
    if not requested or not requested.strip():
        return list(providers.values()), False
    names = [n.strip().lower() for n in requested.split(",") if n.strip()]
    unknown = [n for n in names if n not in providers]
    if unknown:
        raise UsageError(f"unknown provider(s): {', '.join(unknown)}; choose from {', '.join(providers)}")
    return [providers[n] for n in dict.fromkeys(names)], True


def not_configured(provider: Provider) -> str | None:
    """Why a provider cannot run, or None when its secrets and required config are set."""
    missing = [provider.env(s) for s in provider.missing_secrets()]
    missing += [provider.env(c) for c in provider.missing_config()]
    if not missing:
        return None
    return f"not configured: set {', '.join(missing)} (or [sources.{provider.name}] in .dlt/)"


# --- running --------------------------------------------------------------------------------


def _find_cause(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of `kind` in `exc`'s chain: causes, contexts, and the exception a
    dlt `PipelineStepFailed` wraps."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        stack.extend([current.__cause__, current.__context__, getattr(current, "exception", None)])
    return None


def describe_failure(provider: Provider, exc: BaseException) -> str:
    """A one-paragraph, redacted explanation of why a provider failed."""
    billing_error = _find_cause(exc, BillingError)
    if billing_error is not None:
        return billing_error.describe()
    missing = _find_cause(exc, ConfigFieldMissingException)
    if missing is not None:
        keys = ", ".join(provider.env(f) for f in missing.fields)
        return f"{provider.name}: missing configuration {keys} (or [sources.{provider.name}] in .dlt/)"
    return redact(f"{provider.name}: {type(exc).__name__}: {exc}")


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


def run_provider(pipeline: dlt.Pipeline, provider: Provider, progress_interval: float = 5.0) -> Outcome:
    """Extract, normalize and load one provider; never raises for a provider's own failure."""
    run_stats.forget(provider.name)
    print(f"→ {provider.title} ({provider.name})", file=sys.stderr, flush=True)
    status, message = "loaded", ""
    try:
        with ProgressPrinter(provider.name, progress_interval):
            source = provider.source()
            pipeline.run(source, loader_file_format=loader_file_format(pipeline.destination))
    except Exception as exc:
        status, message = "failed", describe_failure(provider, exc)
    stats = run_stats.current(provider.name)
    if stats:
        stats.finished = time.monotonic()
    return Outcome(provider.name, status, stats.account if stats else "", message, stats)


def format_summary(outcomes: Iterable[Outcome]) -> str:
    """The end-of-run table: one line per provider, then skipped rows and failures explained."""
    header = (
        "provider",
        "account",
        "status",
        "clients",
        "invoices",
        "lines",
        "unchanged",
        "requests",
        "retries",
        "time",
    )
    rows: list[tuple[str, ...]] = [header]
    notes: list[str] = []
    for o in outcomes:
        s = o.stats
        if s is not None:
            rows.append(
                (
                    o.provider,
                    o.account or s.account or "-",
                    o.status,
                    f"{s.clients:,}",
                    f"{s.invoices:,}",
                    f"{s.lines:,}",
                    f"{s.unchanged:,}",
                    f"{s.requests:,}",
                    f"{s.retries:,}",
                    f"{s.duration:.1f}s",
                )
            )
            for reason, count in sorted(s.skipped.items()):
                examples = ", ".join(s.skipped_examples.get(reason, []))
                example = f" (e.g. {examples})" if examples else ""
                notes.append(f"  {o.provider}: skipped {count:,} — {reason}{example}")
            if s.mismatches:
                notes.append(
                    f"  {o.provider}: {s.mismatches:,} invoice(s) whose own figures disagree with "
                    "subtotal + tax + shipping − withholding; the provider's total was kept"
                )
        else:
            rows.append((o.provider, o.account or "-", o.status, "", "", "", "", "", "", ""))
        if o.message:
            notes.append(f"  {o.message}" if o.message.startswith(o.provider) else f"  {o.provider}: {o.message}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(["Summary", *lines, *notes])


def load(requested: str | None = None, *, pipeline_name: str | None = None, progress_interval: float = 5.0) -> int:
    """Run every selected provider and print the summary. Returns the exit code."""
    providers = discover()
    try:
        selected, explicit = select(providers, requested)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    outcomes: list[Outcome] = []
    runnable: list[Provider] = []
    for provider in selected:
        reason = not_configured(provider)
        if reason is None:
            runnable.append(provider)
        else:
            print(f"skip {provider.name}: {reason}", file=sys.stderr)
            if explicit:
                outcomes.append(Outcome(provider.name, "failed", message=reason))
    if not runnable:
        print(
            "error: no provider is configured. Put credentials in .dlt/secrets.toml (see "
            ".dlt/secrets.toml.example) or in environment variables such as "
            "SOURCES__INVOICEXPRESS__API_KEY; or run `make demo` to load the sandboxes.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    pipeline = make_pipeline(pipeline_name)
    if not finish_interrupted_load(pipeline):
        return EXIT_FAILED
    for provider in runnable:
        outcomes.append(run_provider(pipeline, provider, progress_interval))
    print(format_summary(outcomes), file=sys.stderr)
    return EXIT_OK if all(o.status == "loaded" for o in outcomes) else EXIT_FAILED


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
    return EXIT_OK


def _setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("billing").setLevel(logging.INFO if os.environ.get("BILLING_VERBOSE") else logging.WARNING)
    install_log_redaction()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: `billing-elt [load|reset PROVIDER]`."""
    parser = argparse.ArgumentParser(
        prog="billing-elt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs="?", default="load", choices=("load", "reset"))
    parser.add_argument("provider", nargs="?", help="with reset: the provider to reset")
    parser.add_argument(
        "--providers",
        default=os.environ.get("PROVIDERS"),
        help="comma-separated providers to load (default: every configured one; env PROVIDERS)",
    )
    parser.add_argument("--pipeline-name", default=None, help="dlt pipeline name (default: billing)")
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=float(os.environ.get("PROGRESS_INTERVAL", 5)),
        help="seconds between progress lines; 0 to disable",
    )
    args = parser.parse_args(argv)
    _setup_logging()
    if args.command == "reset":
        if not args.provider:
            parser.error("reset needs a provider name")
        return reset(args.provider, pipeline_name=args.pipeline_name)
    return load(args.providers, pipeline_name=args.pipeline_name, progress_interval=args.progress_interval)


if __name__ == "__main__":
    sys.exit(main())
