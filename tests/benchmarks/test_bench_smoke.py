"""The benchmark suite runs end to end at tiny sizes and checks what it loads.

No timing is asserted: figures at this size mean nothing. Each benchmark raises
`CorrectnessError` when the tables it loaded differ from what was generated or served.

Everything here but the Postgres load runs on DuckDB with the base dependencies. The Postgres
load needs the `postgres` extra (psycopg2) and the server binaries: without either its test is
skipped with the reason, and the section's one line saying why is checked instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks import postgres_cluster, postgres_load, report
from benchmarks.__main__ import run_all
from benchmarks.common import Scale
from benchmarks.postgres_cluster import NO_DRIVER
from benchmarks.postgres_cluster import unavailable as postgres_unavailable
from benchmarks.rerun import available as reruns

pytestmark = pytest.mark.integration

NO_EXTRA = "the Postgres driver (psycopg2) is not installed: `make install EXTRAS=postgres`"


def tiny() -> Scale:
    return Scale(
        load_n=300,
        naive_n=60,
        net_clients=4,
        baseline_clients=1,
        budget_clients=0,
        latency=0.01,
        rerun_clients=2,
        memory_ns=(200,),
        memory_providers=("invoicexpress", "kitchen"),  # the sandbox's tally of what it served, and its summary
        wide_concurrency=0,
        accounts=2,
        account_clients=2,
        history_invoices=180,
        history_reruns=1,
        history_observations=2_000,
        quick=True,
    )


def test_every_benchmark_runs_and_checks_its_tables(tmp_path: Path) -> None:
    scale = tiny()
    sections = run_all(scale, ("load", "network", "rerun", "memory", "remap"), echo=False)

    assert [s.title[:2] for s in sections] == ["1.", "2.", "3.", "4.", "5."]
    load, network, rerun, memory, remap = sections
    # ours (first load), ours again (merge), naive (first 2 pages), read_json, typed read_json
    assert [row[1] for row in load.rows] == ["300", "300", "60", "300", "300"]
    assert [row[3] for row in network.rows] == ["13", "4"]  # 1 client page + 3 pages per client
    assert {row[0] for row in rerun.rows} == set(reruns())  # every provider with a sandbox and a source
    ix = [row for row in rerun.rows if row[0] == "invoicexpress"]
    assert [row[4] for row in ix] == ["7", "7"]  # InvoiceXpress re-reads everything
    assert ix[0][5] == ix[1][5]  # and rewrites the same rows
    assert not ix[0][5].startswith("0 ")
    assert memory.rows[0][0] == "imports only (baseline)"
    assert [row[:2] for row in memory.rows[1:]] == [["invoicexpress", "180"], ["kitchen", "200"]]  # 90, 20 a client
    assert [row[1] for row in remap.rows] == ["300", "300", "300"]  # load path, remap unchanged, remap all
    assert all(target.measured for s in sections for target in s.targets)

    out = tmp_path / "benchmarks.md"
    report.write(report.render(sections, scale, 1.0), out)
    text = out.read_text()
    assert "DuckDB" in text and "cores:" in text and "## Targets" in text


def test_many_accounts_run_at_both_concurrencies_and_do_the_same_work() -> None:
    (accounts,) = run_all(tiny(), ("accounts",), echo=False)

    assert accounts.title.startswith("5. Many accounts: 2 ")
    one, eight = accounts.rows  # account_concurrency 1, then 8
    assert one[0].endswith("= 1") and eight[0].endswith("= 8")
    assert one[1:4] == eight[1:4]  # accounts, requests, rows (checked against the sandboxes' summaries)
    assert one[1] == "2" and int(one[2]) > 0 and not one[3].startswith("0 ")
    assert eight[7].startswith("2.00x")  # the ideal: 2 accounts, both at once


def test_the_history_benchmark_reruns_both_ways_and_reads_the_views() -> None:
    (section,) = run_all(tiny(), ("history",), echo=False)

    assert section.title == "8. Invoice history"
    without, keeping, month_end, payments = section.rows
    assert without[0].endswith("without history") and keeping[0].endswith("keeping history")
    assert keeping[1].startswith("2 clients × 90 documents = 180 invoices")
    assert keeping[4] == "0"  # the rerun added no history row (and the tables were checked after each run)
    assert month_end[0] == "read receivables_month_end in full" and payments[0] == "read invoice_payments in full"
    assert month_end[1].startswith("2,000 history rows of 500 invoices")
    assert section.targets[0].name.startswith("history: rows a rerun") and section.targets[0].met


@pytest.mark.postgres
def test_the_postgres_load_puts_the_same_invoices_in_both_warehouses() -> None:
    pytest.importorskip("psycopg2", reason=NO_EXTRA)
    reason = postgres_unavailable()  # the server binaries
    if reason is not None:
        pytest.skip(f"Postgres load not measured: {reason}")
    (load,) = run_all(tiny(), ("postgres",), echo=False)

    assert load.title.startswith("6. Postgres load: 300 invoices")
    duckdb, postgres = load.rows
    assert duckdb[:2] == ["DuckDB (file)", "parquet"]
    assert postgres[:2] == ["Postgres (throwaway cluster)", "insert_values"]
    assert duckdb[2:4] == postgres[2:4] and duckdb[2] == "300"  # invoices and lines, checked against the pages


def test_the_postgres_load_is_one_line_saying_why_when_no_server_binaries_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("psycopg2", reason=NO_EXTRA + " (it is looked for before the server binaries)")
    monkeypatch.setattr(postgres_cluster, "DEBIAN_BINARIES", tmp_path)  # no <version>/bin under it
    monkeypatch.setenv("PATH", str(tmp_path))  # nor pg_ctl on the PATH
    section = postgres_load.run(Scale(load_n=300, quick=True))

    rendered = report.render_section(section).strip()
    assert "\n" not in rendered
    assert rendered.startswith("## 6. Postgres load: skipped")
    assert "initdb" in rendered and "apt-get install postgresql" in rendered
    assert not list(tmp_path.iterdir())  # no cluster was started


def test_the_postgres_load_is_one_line_saying_why_without_the_postgres_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # `import psycopg2` fails, as without the extra
    section = postgres_load.run(Scale(load_n=300, quick=True))

    rendered = report.render_section(section).strip()
    assert rendered == f"## 6. Postgres load: skipped, {NO_DRIVER}"
    assert "EXTRAS=postgres" in rendered
