"""`make demo`: start every provider's sandbox on loopback, its data ending today, run the real pipeline
against them into `demo.duckdb`, show what was loaded next to what the sandboxes hold, and write the
HTML report (`demo-report.html` beside the file) from the views the load created. The ECB's sandbox
serves the reference rates the load reads after the shipped history (docs/reporting-currency.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines import report as html_report
from pipelines.cli import setup_logging, signal_name, stop_on_signals
from pipelines.failures import stop_signal
from pipelines.run import load
from pipelines.warehouse import read_only
from sandbox.framework import App
from sandbox.server import SandboxServer, available, feeds

DEMO_DB = "demo.duckdb"
DEMO_REPORT = "demo-report.html"
# From a view, which applies the contract's rules (docs/canonical-model.md): credit notes count
# negative; receipts (they settle invoices already counted), quotes and other non-billing
# documents, drafts, voids and deleted documents count in no figure. Plain SQL that Postgres runs too.
EXAMPLE_QUERY = """\
-- Invoiced, paid, owed and written off, per provider and currency (credit notes negative;
-- receipts, quotes, drafts and voids left out: the view client_balances applies the rules)
SELECT provider, currency,
       sum(documents)     AS documents,
       sum(invoiced)      AS invoiced,
       sum(paid)          AS paid,
       sum(outstanding)   AS outstanding,
       sum(uncollectible) AS uncollectible
FROM billing.client_balances
GROUP BY provider, currency
ORDER BY provider, currency;"""
PYTHON_QUERY = "SELECT month, currency, sum(net) AS net FROM billing.revenue_monthly GROUP BY ALL ORDER BY ALL"

HELP = """\
The demo: every provider's sandbox (a local simulator of its API, with made-up clients and
invoices up to today) served on loopback, loaded by the real pipeline into demo.duckdb, and
the result shown. No account, secret or network beyond this machine is needed.

What it does, in order:
  1. starts the sandboxes of InvoiceXpress, Flow Payroll, Kitchen, Fohlio and the ECB's rates;
  2. deletes demo.duckdb (and demo.duckdb.wal) if they exist, then loads every sandbox into a
     new demo.duckdb, printing the load's progress and summary, as `billing-elt load` does;
  3. prints, per provider, what was loaded next to what its sandbox holds, and how to query
     the file;
  4. writes the HTML report demo-report.html beside it, and stops the sandboxes.

Your own warehouse (warehouse.duckdb) and pipeline state are not touched: the demo keeps its
pipeline state in a temporary folder it removes. DESTINATION__DUCKDB__CREDENTIALS=FILE loads
into another file than demo.duckdb."""

HELP_EPILOG = """\
afterwards:
  make query DB=demo.duckdb                     the example query it prints
  make query DB=demo.duckdb SQL="SELECT * FROM billing.receivables_aging"
  make report DB=demo.duckdb OUTPUT=demo-report.html

exit codes: those of `billing-elt load` (`billing-elt load --help`): 0 when every sandbox
loaded, 1 when one failed (its summary line says why), 3 when another run is writing the same
file, 130 / 143 when Ctrl-C (SIGINT) / SIGTERM stopped it (a second one stops it at once)."""


def warehouse_figures(db: Path) -> dict[str, dict[str, Any]]:
    """Counts and totals per provider, read back from the warehouse."""
    figures: dict[str, dict[str, Any]] = {}
    with read_only(db) as con:
        for table, key in (("clients", "clients"), ("invoices", "invoices"), ("invoice_items", "lines")):
            for provider, count in con.execute(f"SELECT provider, count(*) FROM billing.{table} GROUP BY 1").fetchall():
                figures.setdefault(provider, {"totals": {}})[key] = count
        rows = con.execute("SELECT provider, currency, sum(total) FROM billing.invoices GROUP BY 1, 2 ORDER BY 1, 2")
        for provider, currency, total in rows.fetchall():
            figures.setdefault(provider, {"totals": {}})["totals"][currency] = total
    return figures


def _money(totals: dict[str, Decimal]) -> str:
    return ", ".join(f"{currency} {Decimal(total):,.2f}" for currency, total in sorted(totals.items())) or "-"


def report(apps: dict[str, App], db: Path, shown: Path) -> str:
    loaded = warehouse_figures(db)
    lines = ["", f"Loaded into {shown} (dataset billing):", ""]
    header = f"  {'provider':<14}{'clients':>8}{'documents':>11}{'lines':>8}  sum of every document's total"
    lines += [header, "  " + "-" * (len(header) + 20)]
    for name, app in apps.items():
        got = loaded.get(name, {"totals": {}})
        expected = app.summary()
        same = all(got.get(k, 0) == expected[k] for k in ("clients", "invoices", "lines")) and {
            c: Decimal(t) for c, t in got["totals"].items()
        } == {c: Decimal(t) for c, t in expected["totals"].items()}
        mark = "✓ matches the sandbox" if same else f"✗ sandbox holds {expected}"
        lines.append(
            f"  {name:<14}{got.get('clients', 0):>8,}{got.get('invoices', 0):>11,}"
            f"{got.get('lines', 0):>8,}  {_money(got['totals'])}"
        )
        lines.append(f"  {'':<14}{mark}")
    lines += [
        "",
        "  (every document as the sandbox holds it, drafts, voids and receipts included: a check that",
        "  everything arrived, not revenue; the views count what is billed, as the query below does)",
        "",
        *query_hints(shown),
        "",
        *("  " + line for line in EXAMPLE_QUERY.splitlines()),
        "",
    ]
    return "\n".join(lines)


def _shown(path: Path) -> Path:
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def query_hints(shown: Path) -> list[str]:
    """How to open the file: `make query`, the DuckDB CLI (said as such only where it is on the
    PATH) and Python with the duckdb package of this environment."""
    python = _shown(Path(sys.executable).absolute())
    code = f"import duckdb; duckdb.connect('{shown}', read_only=True).sql('{PYTHON_QUERY}').show()"
    if shutil.which("duckdb"):
        cli = ["In the DuckDB CLI:"]
    else:
        cli = ["If you have the DuckDB CLI (1.4 or later; the README's Querying says how to get it):"]
    return [
        "Try it:",
        f"  make query DB={shown}                    runs the query below",
        *cli,
        f"  duckdb -readonly {shown}",
        "In Python, with the duckdb package of this environment:",
        f'  {python} -c "{code}"',
    ]


def main(argv: list[str] | None = None) -> int:
    """Serve the sandboxes, load them, print the comparison. Returns the pipeline's exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.demo",
        usage="make demo  (which runs .venv/bin/python -m pipelines.demo)",
        description=HELP,
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    try:
        parser.parse_args(argv)
    except SystemExit as exit_:  # 0 for --help, 2 for anything else
        return exit_.code if isinstance(exit_.code, int) else 2
    db = Path(os.environ.get("DESTINATION__DUCKDB__CREDENTIALS", DEMO_DB)).resolve()
    shown = _shown(db)
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    # Data up to today, so that the report's aging and DSO read as a live business's.
    today = dt.datetime.now(dt.UTC).date()
    apps = {name: create(seed=42, today=today) for name, create in available().items()}
    servers = [SandboxServer(app).start() for app in apps.values()]
    rates = [SandboxServer(create(seed=42)).start() for create in feeds().values()]  # SOURCES__ECB__BASE_URL
    try:
        with stop_on_signals():
            return _load_and_show(db, shown, apps, servers, rates)
    except KeyboardInterrupt as stopped:  # a second signal stops it at once, wherever it was
        signum = int(stop_signal(stopped) or signal.SIGINT)
        print(
            f"demo stopped by {signal_name(signum)} at once: {shown} may hold part of the sandboxes' data; "
            f"`make demo` loads it again from the start. Exit {128 + signum}.",
            file=sys.stderr,
        )
        return 128 + signum
    finally:
        for server in [*servers, *rates]:
            server.stop()


def _load_and_show(
    db: Path, shown: Path, apps: dict[str, App], servers: list[SandboxServer], rates: list[SandboxServer]
) -> int:
    env: dict[str, str] = {k: v for s in rates for k, v in s.app.pipeline_env(s.url).items()}
    for app, server in zip(apps.values(), servers, strict=True):
        print(f"sandbox {app.name:<14} {server.url}", file=sys.stderr)
        env.update(app.pipeline_env(server.url))
    with tempfile.TemporaryDirectory(prefix="billing-demo-") as state_dir:
        env.update(
            DESTINATION__DUCKDB__CREDENTIALS=str(db),
            PIPELINES_DIR=state_dir,
            PIPELINE_NAME="billing_demo",
        )
        os.environ.update(env)
        setup_logging()
        code = load(",".join(apps), progress_interval=2.0)
    if code > 128:  # stopped by a signal: the load said what it had committed
        print(f"demo stopped: no report; `make demo` loads {shown} again from the start.", file=sys.stderr)
        return code
    if db.exists():
        print(report(apps, db, shown))
        page = html_report.write_report(db.with_name(DEMO_REPORT), db)
        print(f"The report (open it in a browser): {_shown(page)}")
        print(f"  make report DB={shown} OUTPUT={page.name}   writes it again")
    return code


if __name__ == "__main__":
    sys.exit(main())
