"""The command line: `billing-elt [load | reset PROVIDER | report [--output FILE]]` (docs/configuration.md).

    billing-elt                                 # load every provider whose secrets are set
    PROVIDERS=invoicexpress,kitchen billing-elt
    billing-elt reset kitchen                   # forget one provider's rows and state
    billing-elt report --output report.html     # the HTML report from the warehouse

Exit codes: 0 when every selected provider loaded; 1 when at least one failed; 2 when there
was nothing to run or the command line was wrong (unknown provider, nothing configured).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

import httpx

from pipelines import config, report
from pipelines.run import load, reset
from sources.shared.redact import install_log_redaction


def setup_logging() -> None:
    """Warnings and errors on stderr (the pipeline's own INFO lines with `BILLING_VERBOSE=1`),
    every record redacted."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("billing").setLevel(logging.INFO if os.environ.get("BILLING_VERBOSE") else logging.WARNING)
    install_log_redaction()


def main(argv: Sequence[str] | None = None, *, transports: Mapping[str, httpx.BaseTransport] | None = None) -> int:
    """Parse the command line and run it; returns the exit code. `transports` (provider name →
    httpx transport) serves providers in-process, for tests."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["report"]:
        return report.main(args_in[1:])
    parser = argparse.ArgumentParser(
        prog="billing-elt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs="?", default="load", choices=("load", "reset", "report"))
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
        default=float(os.environ.get("PROGRESS_INTERVAL", config.DEFAULT_PROGRESS_INTERVAL)),
        help="seconds between progress lines; 0 to disable",
    )
    args = parser.parse_args(args_in)
    setup_logging()
    if args.command == "reset":
        if not args.provider:
            parser.error("reset needs a provider name")
        return reset(args.provider, pipeline_name=args.pipeline_name)
    return load(
        args.providers,
        pipeline_name=args.pipeline_name,
        progress_interval=args.progress_interval,
        transports=transports,
    )
