"""The command line: `billing-elt [load | reset PROVIDER[:LABEL] | remap [PROVIDER[:LABEL]] | report [--output FILE]
| check]` (docs/configuration.md).

    billing-elt                                 # load every provider whose secrets are set
    PROVIDERS=invoicexpress,kitchen billing-elt
    PROVIDERS=kitchen:eu billing-elt            # one account ([sources.kitchen.accounts.eu])
    billing-elt reset kitchen                   # forget one provider's rows and state
    billing-elt reset kitchen:eu                # ... or one account's
    billing-elt remap                           # rows derived again from the stored payloads, no API call
    billing-elt remap kitchen:eu                # ... of one provider or account only
    billing-elt report --output report.html     # the HTML report from the warehouse
    billing-elt check                           # the data checks (docs/checks.md), no API call
    billing-elt load --allow-mass-delete        # confirm deletions the mass-delete guard refused

Exit codes: 0 when every selected provider loaded; 1 when at least one failed or a guard
refused (mass delete); 2 when there was nothing to run or the command line was wrong (unknown
provider, nothing configured); 3 when another run holds the lock of this warehouse; 130 / 143
when stopped by SIGINT / SIGTERM; `check`: 4 when a check of severity `error` failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType

import httpx

from pipelines import checks, config, remap, report
from pipelines.failures import Stopped
from pipelines.run import EXIT_USAGE, load, reset
from sources.shared import stop
from sources.shared.redact import install_log_redaction


class UtcFormatter(logging.Formatter):
    """`2025-01-01T02:00:00Z INFO message`: ISO 8601 in UTC on every line, a multi-line message
    (a traceback in verbose mode) prefixed line by line."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        first, *rest = text.splitlines() or [""]
        prefix = first[: first.index(record.levelname) + len(record.levelname) + 1] if rest else ""
        return "\n".join([first, *(prefix + line for line in rest)])


FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging() -> None:
    """Every line on stderr with a UTC timestamp and redacted: the run's own narrative (header,
    providers, summary) at INFO; other warnings and errors; everything with `BILLING_VERBOSE=1`."""
    verbose = bool(os.environ.get("BILLING_VERBOSE"))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        UtcFormatter(FORMAT if not verbose else FORMAT.replace("%(message)s", "%(name)s: %(message)s"))
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("billing").setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("billing.run").setLevel(logging.INFO)
    install_log_redaction()
    quiet_dlt(verbose)


def quiet_dlt(verbose: bool) -> None:
    """dlt's own logger: our format (UTC timestamps), and, unless verbose, only warnings without
    tracebacks — every failure is explained once, in one paragraph, by the run itself. dlt sets
    up its logger on first use and reuses a handler it finds there, replacing its formatter: the
    handler installed here keeps ours."""
    handler = _KeepFormatHandler(sys.stderr)
    handler.setFormatter(UtcFormatter(FORMAT))
    handler.locked = True
    if not verbose:
        handler.addFilter(_no_traceback)
    dlt_logger = logging.getLogger("dlt")
    for old in list(dlt_logger.handlers):
        dlt_logger.removeHandler(old)
    dlt_logger.addHandler(handler)
    dlt_logger.propagate = False


class _KeepFormatHandler(logging.StreamHandler):
    locked = False

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        if not self.locked:
            super().setFormatter(fmt)


def _no_traceback(record: logging.LogRecord) -> bool:
    """dlt's warnings on one line, without the tracebacks it puts in some messages (a job retried
    on a full disk logs one per retry); its errors are told by the run itself."""
    if record.exc_info or record.levelno >= logging.ERROR:
        return False
    message = record.getMessage()
    if "Traceback (most recent call last)" in message:
        return False
    record.msg, record.args = message.splitlines()[0] if message else message, None
    return True


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop the whole run. The first is noted (`sources.shared.stop`, and dlt's
    own flag, which its steps check): the run stops at its next safe point (between two pages, two
    steps, two providers; a commit or a query in progress completes first) with one line saying
    what was committed. A second signal of the same kind stops it at once."""
    from dlt.common.runtime import signals as dlt_signals

    received: dict[int, int] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        received[signum] = received.get(signum, 0) + 1
        if received[signum] > 1:
            raise Stopped(signum)
        stop.request(signum)
        dlt_signals.set_received_signal(signum)
        dlt_signals.exit_event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        stop.clear()
        dlt_signals._clear_signals()


def main(argv: Sequence[str] | None = None, *, transports: Mapping[str, httpx.BaseTransport] | None = None) -> int:
    """Parse the command line and run it; returns the exit code. `transports` (provider name →
    httpx transport) serves providers in-process, for tests."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["report"]:
        return report.main(args_in[1:])
    parser = argparse.ArgumentParser(
        prog="billing-elt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs="?", default="load", choices=("load", "reset", "remap", "report", "check"))
    parser.add_argument(
        "provider",
        nargs="?",
        help="with reset: the provider (or provider:label account) to reset; with remap: the providers or "
        "accounts to remap, comma-separated (default: every account the warehouse holds)",
    )
    parser.add_argument(
        "--providers",
        default=os.environ.get("PROVIDERS"),
        help="comma-separated providers or provider:label accounts to load (default: every configured; env PROVIDERS)",
    )
    parser.add_argument("--pipeline-name", default=None, help="dlt pipeline name (default: billing)")
    parser.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="with load: confirm, for this run, deletions beyond max_delete_fraction that the guard refused",
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=None,
        help="seconds between progress lines; 0 to disable (env PROGRESS_INTERVAL)",
    )
    try:
        args = parser.parse_args(args_in)
    except SystemExit as exit_:  # argparse exits 2 on a wrong command line, 0 for --help
        return int(exit_.code or 0)
    setup_logging()
    try:
        interval = (
            args.progress_interval
            if args.progress_interval is not None
            else float(os.environ.get("PROGRESS_INTERVAL", config.DEFAULT_PROGRESS_INTERVAL))
        )
    except ValueError:
        logging.getLogger("billing.run").error("PROGRESS_INTERVAL is not a number of seconds")
        return EXIT_USAGE
    with stop_on_signals():
        try:
            if args.command == "reset":
                if not args.provider:
                    parser.print_usage(sys.stderr)
                    logging.getLogger("billing.run").error("reset needs a provider name")
                    return EXIT_USAGE
                return reset(args.provider, pipeline_name=args.pipeline_name)
            if args.command == "remap":
                return remap.remap(args.provider, pipeline_name=args.pipeline_name)
            if args.command == "check":
                return checks.check(pipeline_name=args.pipeline_name)
            return load(
                args.providers,
                pipeline_name=args.pipeline_name,
                progress_interval=interval,
                transports=transports,
                allow_mass_delete=args.allow_mass_delete,
            )
        except Stopped as stopped:  # before the run started or after it ended
            logging.getLogger("billing.run").error("stopped by signal %d before anything was written", stopped.signum)
            return 128 + stopped.signum
