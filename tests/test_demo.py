"""`make demo` (python -m pipelines.demo) as its users meet it: its help, and what it prints to
try next (a query on a view, which counts nothing twice, and how to open the file). The load
it runs is the one tests/analysis/conftest.py runs on every sandbox; the example query runs on
that warehouse in tests/analysis/test_query.py."""

from __future__ import annotations

import pytest

from pipelines import demo


def test_the_demo_has_a_help_and_refuses_other_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "demo.duckdb" in text and "demo-report.html" in text and "make query DB=demo.duckdb" in text
    assert "exit codes:" in text
    assert demo.main(["--db", "x"]) == 2


def test_the_demo_s_example_query_reads_a_view_and_says_how_to_open_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert "FROM billing.client_balances" in demo.EXAMPLE_QUERY and "billing.invoices" not in demo.EXAMPLE_QUERY
    monkeypatch.setattr(demo.shutil, "which", lambda name: None)
    absent = "\n".join(demo.query_hints(demo.Path("demo.duckdb")))
    assert "If you have the DuckDB CLI" in absent and "duckdb -readonly demo.duckdb" in absent
    assert "import duckdb; duckdb.connect('demo.duckdb', read_only=True)" in absent
    monkeypatch.setattr(demo.shutil, "which", lambda name: "/usr/bin/duckdb")
    present = "\n".join(demo.query_hints(demo.Path("demo.duckdb")))
    assert "In the DuckDB CLI:" in present and "If you have" not in present
