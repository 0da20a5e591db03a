"""`make demo`: start every provider's sandbox on loopback, its data ending today, run the real pipeline
against them into `demo.duckdb`, show what was loaded next to what the sandboxes hold, and write the
HTML report (`demo-report.html` beside the file) from the views the load created. The ECB's sandbox
serves the reference rates the load reads after the shipped history (docs/reporting-currency.md)."""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines import report as html_report
from pipelines.cli import setup_logging
from pipelines.run import load
from pipelines.warehouse import read_only
from sandbox.framework import App
from sandbox.server import SandboxServer, available, feeds

DEMO_DB = "demo.duckdb"
DEMO_REPORT = "demo-report.html"
EXAMPLE_QUERY = """\
SELECT provider, currency, status,
       count(*)         AS invoices,
       sum(total)       AS total,
       sum(balance_due) AS outstanding
FROM billing.invoices
GROUP BY ALL
ORDER BY provider, currency, status;"""


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
    header = f"  {'provider':<14}{'clients':>8}{'invoices':>10}{'lines':>8}  totals per currency"
    lines += [header, "  " + "-" * (len(header) + 20)]
    for name, app in apps.items():
        got = loaded.get(name, {"totals": {}})
        expected = app.summary()
        same = all(got.get(k, 0) == expected[k] for k in ("clients", "invoices", "lines")) and {
            c: Decimal(t) for c, t in got["totals"].items()
        } == {c: Decimal(t) for c, t in expected["totals"].items()}
        mark = "✓ matches the sandbox" if same else f"✗ sandbox holds {expected}"
        lines.append(
            f"  {name:<14}{got.get('clients', 0):>8,}{got.get('invoices', 0):>10,}"
            f"{got.get('lines', 0):>8,}  {_money(got['totals'])}"
        )
        lines.append(f"  {'':<14}{mark}")
    lines += [
        "",
        "Try it (runs the query below):",
        f"  make query DB={shown}",
        "or in the DuckDB CLI (1.4 or later):",
        f"  duckdb -readonly {shown}",
        "",
        *("  " + line for line in EXAMPLE_QUERY.splitlines()),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """Serve the sandboxes, load them, print the comparison. Returns the pipeline's exit code."""
    db = Path(os.environ.get("DESTINATION__DUCKDB__CREDENTIALS", DEMO_DB)).resolve()
    shown = db.relative_to(Path.cwd()) if db.is_relative_to(Path.cwd()) else db
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    # Data up to today, so that the report's aging and DSO read as a live business's.
    today = dt.datetime.now(dt.UTC).date()
    apps = {name: create(seed=42, today=today) for name, create in available().items()}
    servers = [SandboxServer(app).start() for app in apps.values()]
    rates = [SandboxServer(create(seed=42)).start() for create in feeds().values()]  # SOURCES__ECB__BASE_URL
    try:
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
        if db.exists():
            print(report(apps, db, shown))
            page = html_report.write_report(db.with_name(DEMO_REPORT), db)
            page_shown = page.relative_to(Path.cwd()) if page.is_relative_to(Path.cwd()) else page
            print(f"The report (open it in a browser): {page_shown}")
            print(f"  make report DB={shown} OUTPUT={page.name}   writes it again")
        return code
    finally:
        for server in [*servers, *rates]:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
