"""The command line, `billing-elt COMMAND [OPTIONS]` (docs/configuration.md, "Command line and
exit codes"): `load` (the default: `billing-elt` alone loads), `reset`, `remap`, `report`,
`check`. What each does, its options, examples and exit codes are in its help, written here for
the people who run it (`billing-elt COMMAND --help`); `billing-elt --help` lists the commands.

A command line without a command is a load (`billing-elt --providers kitchen`); a command
written after options that belong to it (`billing-elt --pipeline-name x remap`, which the first
parser took) is still found.
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
from pipelines.failures import Stopped, stop_signal
from pipelines.run import EXIT_USAGE, load, reset, version
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


@contextmanager
def stop_at_once() -> Iterator[None]:
    """SIGINT and SIGTERM stop a command that commits nothing (the report) at once. The stop is
    noted too (`sources.shared.stop`): a database driver that turns the interruption into an error
    of its own (DuckDB's "Query interrupted") is then told from a failure."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.request(signum)
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        stop.clear()


# --- the help, for the people who run the commands --------------------------------------------


def provider_names() -> str:
    """The providers this installation has (`sources/<name>/`, providers_packages), for the help."""
    try:
        from pipelines.registry import discover

        names = list(discover())
    except Exception:  # a providers_packages entry that cannot be imported: a load says so
        return "a provider's name"
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


STOPPED = """\
  130 / 143  stopped by Ctrl-C (SIGINT) / SIGTERM at the next safe point, with one line
             saying what was done (a second signal stops it at once)"""

OVERVIEW = """\
Every client invoice from your invoicing platforms (InvoiceXpress, Flow Payroll, Kitchen,
Fohlio) in a SQL warehouse you own: a DuckDB file (warehouse.duckdb) unless configured
otherwise, with the tables and views in the schema `billing`.

Run it from the project folder, where .dlt/config.toml and .dlt/secrets.toml are (settings can
also be environment variables; docs/setup.md). Without a command it loads: `billing-elt` is
`billing-elt load`."""

OVERVIEW_EPILOG = f"""\
`billing-elt COMMAND --help` says what a command does, its options, examples and exit codes.

exit codes:
  0          done
  1          a provider account failed, a guard refused, or the warehouse could not be
             read or written (the message says which and why)
  2          a wrong command line, or nothing to run
  3          another run is using this warehouse: nothing was done
  4          check: a data check of severity error failed
{STOPPED}"""

LOAD = """\
Load the invoices (with their lines) and the clients of every configured provider account into
the warehouse, then refresh the analysis views (revenue by month, receivables aging, client
balances, DSO, ...) and run the data checks.

A provider account is configured when its secrets are set; the others are skipped with one line
saying so. Rows are merged on their keys: running it twice changes nothing, and the next run
completes one that was interrupted. One failing account never stops the others, and keeps the
rows it had.

Reads: the providers' APIs, the ECB's reference rates, .dlt/config.toml and .dlt/secrets.toml.
Writes: the warehouse (the tables invoices, invoice_items and clients, the invoices' history,
and a record of the run in pipeline_runs and data_checks), and dlt's local state of the
pipeline (how far each account was read; ~/.dlt/pipelines unless PIPELINES_DIR says otherwise).
Prints: progress while it runs, then one line per provider account: loaded or failed (and why),
rows, requests, time, and the data checks that failed."""

LOAD_EPILOG = f"""\
examples:
  billing-elt                                   the same as `billing-elt load`
  billing-elt load --providers invoicexpress,kitchen
  PROVIDERS=kitchen:eu billing-elt load         one account: [sources.kitchen.accounts.eu]
  billing-elt load --allow-mass-delete          after checking that the deletions are real

exit codes:
  0          every selected provider account loaded
  1          at least one account failed (the summary says which and why), the mass-delete
             guard refused deletions, or the warehouse could not be written (one paragraph
             says why)
  2          nothing to run or a wrong command line (no provider configured, an unknown name,
             a wrong setting)
  3          another run is using this warehouse: nothing was done
{STOPPED}"""

RESET = """\
Forget one provider, or one account of a provider: its invoices and their lines, its clients,
its invoice history and its records that could not be read (unmapped_records) are deleted from
the warehouse, and what the loads remember of it (how far they had read) is forgotten. The next
`billing-elt load` reads it again in full. Other providers and accounts are not touched; the
runs recorded in pipeline_runs and data_checks stay.

Use it to start a provider over, e.g. after pointing its settings at another account. Before
any load there is nothing to reset: it says so and exits 0. To derive the rows again from the
payloads the warehouse stores, without calling the provider, use `billing-elt remap`."""

RESET_EPILOG = f"""\
examples:
  billing-elt reset kitchen                     every Kitchen account
  billing-elt reset kitchen:eu                  one account: [sources.kitchen.accounts.eu]

exit codes:
  0          reset (or nothing to reset yet)
  1          the warehouse could not be read or written, or the views not refreshed (the
             message says why)
  2          no provider named, an unknown provider, or a wrong account label
  3          another run is using this warehouse: nothing was done
{STOPPED}"""

REMAP = """\
Derive the rows again from the payloads the warehouse stores, with the current mapping, without
calling any provider: after an update of billing-elt that changes how a provider's documents are
read (a fix, a new column), the rows already loaded follow it. Only what differs is written;
records that can be mapped now leave unmapped_records. No secret or provider setting is needed.

Reads and writes: the warehouse only (then it refreshes the views). Prints what changed per
provider account and table."""

REMAP_EPILOG = f"""\
examples:
  billing-elt remap                             every account the warehouse holds
  billing-elt remap kitchen                     every Kitchen account
  billing-elt remap kitchen:eu,fohlio           one Kitchen account and Fohlio

exit codes:
  0          every selected account remapped, or nothing changed (before any load:
             nothing to remap)
  1          the rows could not be written or the views not refreshed, or some records were
             left as they were because what their mapping needs was not kept by the load that
             wrote them (one paragraph names them and what to do)
  2          a name the warehouse holds nothing of, or a wrong command line
  3          another run is using this warehouse: nothing was done
{STOPPED}"""

REPORT = """\
Write one HTML page about the receivables, from the warehouse's views: what is outstanding and
overdue (aging per currency), revenue by month (credit notes negative), the clients who owe the
most, days sales outstanding, and how recent and complete the data is. Every currency has its
own figures; totals in the reporting currency are shown too ([analysis] reporting_currency,
default EUR, at the ECB's reference rates: for reporting, not accounting).

The page is one self-contained file: open it in any browser, mail it or publish it; it loads
nothing from elsewhere.

Reads: the warehouse (a DuckDB file is opened read-only). Writes: the HTML file only."""

REPORT_EPILOG = """\
examples:
  billing-elt report                            report.html from the configured warehouse
  billing-elt report --output /srv/www/billing.html
  billing-elt report --db demo.duckdb --output demo-report.html

exit codes:
  0          the page was written
  1          the warehouse cannot give one: nothing loaded yet, or it cannot be read (the
             message says why)
  2          a wrong command line
  130 / 143  stopped by Ctrl-C (SIGINT) / SIGTERM"""

CHECK = """\
Run the data checks on the warehouse, without calling any provider: is each provider account's
data fresh (loaded recently), complete (as many invoices as usual), consistent (each invoice's
total adds up), fully read (no record left unmapped), still shaped as the mapping expects, and
convertible to the reporting currency? Every load runs them too; this command runs them on
their own, e.g. from a monitoring job.

Reads: the warehouse. Writes: one row per check and account in the table data_checks.
Prints: one line per failed check, errors first, each with what to do (nothing when all pass).
Thresholds: [checks] in .dlt/config.toml (docs/checks.md)."""

CHECK_EPILOG = f"""\
examples:
  billing-elt check
  billing-elt check || echo "a check failed"

exit codes:
  0          no check of severity error failed (warnings are printed), or nothing loaded yet
  1          the warehouse could not be read or written (the message says why)
  2          a wrong [checks] setting or a wrong command line
  3          another run is using this warehouse: nothing was done
  4          at least one check of severity error failed
{STOPPED}"""

COMMANDS = {
    "load": ("load every configured provider account into the warehouse (the default)", LOAD, LOAD_EPILOG),
    "reset": ("forget one provider or account: its rows and how far it was read", RESET, RESET_EPILOG),
    "remap": ("derive the rows again from the stored payloads, no API call", REMAP, REMAP_EPILOG),
    "report": ("write the HTML report on receivables and revenue", REPORT, REPORT_EPILOG),
    "check": ("run the data checks on the warehouse, no API call", CHECK, CHECK_EPILOG),
}
# Options that take a value, so that a command written after them is found (`_command_first`).
_VALUED = {"--providers", "--pipeline-name", "--progress-interval", "--output", "-o", "--db"}


def _pipeline_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pipeline-name",
        metavar="NAME",
        default=None,
        help="the pipeline whose warehouse and state to use, when you run several "
        "(default: pipeline_name in .dlt/config.toml, env PIPELINE_NAME, else billing)",
    )


def build_parser() -> argparse.ArgumentParser:
    """`billing-elt` and its commands, each with its own help."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="billing-elt", description=OVERVIEW, epilog=OVERVIEW_EPILOG, formatter_class=raw
    )
    parser.add_argument(
        "--version", action="version", version=f"billing-elt {version()}", help="print the version and exit"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", required=True)
    sub = {
        name: commands.add_parser(name, help=line, description=text, epilog=epilog, formatter_class=raw)
        for name, (line, text, epilog) in COMMANDS.items()
    }
    for command in sub.values():  # a word the command does not take is its usage error, not billing-elt's
        command.set_defaults(command_parser=command)

    load_ = sub["load"]
    load_.add_argument(
        "--providers",
        metavar="NAMES",
        default=None,
        help=f"comma-separated providers ({provider_names()}) or provider:label accounts to load "
        "(default: every configured one; env PROVIDERS)",
    )
    load_.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="confirm, for this run only, the deletions the mass-delete guard refused: when a provider "
        "no longer lists more than max_delete_fraction (default 20%%) of an account's invoices or clients, "
        "a load marks none of them deleted and fails until you confirm (docs/deletions.md)",
    )
    load_.add_argument(
        "--progress-interval",
        metavar="SECONDS",
        type=float,
        default=None,
        help=f"seconds between progress lines while a provider loads (default "
        f"{config.DEFAULT_PROGRESS_INTERVAL:g}; 0: none; env PROGRESS_INTERVAL)",
    )
    _pipeline_name(load_)

    sub["reset"].add_argument(
        "provider",
        metavar="PROVIDER[:LABEL]",
        help=f"the provider ({provider_names()}), or one of its accounts: provider:label, the label of its "
        "[sources.<provider>.accounts.<label>] settings or its account value as the account column shows it",
    )
    _pipeline_name(sub["reset"])

    sub["remap"].add_argument(
        "provider",
        metavar="PROVIDER[:LABEL][,...]",
        nargs="?",
        default=None,
        help="the providers or provider:label accounts to remap, comma-separated (default: every account "
        "the warehouse holds)",
    )
    _pipeline_name(sub["remap"])

    report.add_arguments(sub["report"])

    _pipeline_name(sub["check"])
    return parser


def _command_first(argv: list[str]) -> list[str]:
    """`argv` with its command first: `load` when it names none (`billing-elt`, `billing-elt
    --providers kitchen`); a command written after options (`--pipeline-name x remap`) moved to
    the front. A first word that is no option is left for the parser to judge."""
    if argv and (not argv[0].startswith("-") or argv[0] in ("-h", "--help", "--version")):
        return argv
    expects_value = False
    for i, word in enumerate(argv):
        if expects_value:
            expects_value = False
        elif word in COMMANDS:
            return [word, *argv[:i], *argv[i + 1 :]]
        elif word.startswith("-"):
            expects_value = word in _VALUED
        else:
            break
    return ["load", *argv]


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


# What a stop that escaped a command left, said after "stopped by SIGTERM: ".
_STOPPED_WHAT = {
    "load": "the load did not complete; what it had committed stays, and the next run goes on from there",
    "reset": "the reset did not complete; run it again",
    "remap": "the remap did not complete; what it had committed stays, run it again",
    "check": "the checks did not complete and may not be recorded; run them again",
    "report": "the report may be missing or incomplete; run it again",
}


def main(argv: Sequence[str] | None = None, *, transports: Mapping[str, httpx.BaseTransport] | None = None) -> int:
    """Parse the command line and run it; returns the exit code. `transports` (provider name →
    httpx transport) serves providers in-process, for tests."""
    try:
        args, unknown = build_parser().parse_known_args(_command_first(list(sys.argv[1:] if argv is None else argv)))
        if unknown:
            args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit_:  # argparse exits 2 on a wrong command line, 0 for --help and --version
        return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else EXIT_USAGE
    setup_logging()
    # The report commits nothing: a signal stops it at once. The others stop at their next safe point.
    with stop_at_once() if args.command == "report" else stop_on_signals():
        try:
            return _run(args, transports)
        except KeyboardInterrupt as stopped:  # ours (Stopped) or dlt's SignalReceivedException
            signum = int(stop_signal(stopped) or signal.SIGINT)
            logging.getLogger("billing.run").error(
                "stopped by %s: %s. Exit %d.", signal_name(signum), _STOPPED_WHAT[args.command], 128 + signum
            )
            return 128 + signum


def _run(args: argparse.Namespace, transports: Mapping[str, httpx.BaseTransport] | None) -> int:
    if args.command == "reset":
        return reset(args.provider, pipeline_name=args.pipeline_name)
    if args.command == "remap":
        return remap.remap(args.provider, pipeline_name=args.pipeline_name)
    if args.command == "check":
        return checks.check(pipeline_name=args.pipeline_name)
    if args.command == "report":
        return report.run(args.output, args.db)
    try:
        interval = (
            args.progress_interval
            if args.progress_interval is not None
            else float(os.environ.get("PROGRESS_INTERVAL", config.DEFAULT_PROGRESS_INTERVAL))
        )
    except ValueError:
        logging.getLogger("billing.run").error("PROGRESS_INTERVAL is not a number of seconds")
        return EXIT_USAGE
    return load(
        args.providers if args.providers is not None else os.environ.get("PROVIDERS"),
        pipeline_name=args.pipeline_name,
        progress_interval=interval,
        transports=transports,
        allow_mass_delete=args.allow_mass_delete,
    )
