"""`make demo` (python -m pipelines.demo) as its users meet it: its help, and what it prints to
try next (a query on a view, which counts nothing twice, and how to open the file). The load
it runs is the one tests/analysis/conftest.py runs on every sandbox; the example query runs on
that warehouse in tests/analysis/test_query.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import demo
from tests.support import Workspace


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


@pytest.mark.integration
@pytest.mark.parametrize("signals", [1, 2])
def test_ctrl_c_stops_the_demo_with_a_line_not_a_traceback(tmp_path: Path, signals: int) -> None:
    """One Ctrl-C: the load stops at its next safe point and says so, and the demo writes no report;
    a second one stops it at once. Exit 130 either way, the sandboxes stopped."""
    ws = Workspace(tmp_path)
    env = ws.env({"DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "demo.duckdb"), "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.demo"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # until the load has started
        lines.append(line)
        if "→ " in line:
            break
    for _ in range(signals):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, "".join(lines) + rest
    assert "Traceback" not in rest
    if signals == 1:
        assert "stopped by SIGINT" in rest and "demo stopped: no report" in rest
    else:
        assert "demo stopped by SIGINT at once" in rest or "demo stopped: no report" in rest
    assert not (tmp_path / "demo-report.html").exists()
