"""The benchmark suite runs end to end at tiny sizes and checks what it loads.

No timing is asserted: figures at this size mean nothing. Each benchmark raises
`CorrectnessError` when the tables it loaded differ from what was generated or served.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.__main__ import run_all
from benchmarks.common import Scale
from benchmarks.rerun import available as reruns

pytestmark = pytest.mark.integration


def test_every_benchmark_runs_and_checks_its_tables(tmp_path: Path) -> None:
    scale = Scale(
        load_n=300,
        naive_n=60,
        net_clients=4,
        baseline_clients=1,
        budget_clients=0,
        latency=0.01,
        rerun_clients=2,
        memory_ns=(200,),
        wide_concurrency=0,
        quick=True,
    )
    sections = run_all(scale, echo=False)

    assert [s.title[:2] for s in sections] == ["1.", "2.", "3.", "4.", "5."]
    load, network, rerun, memory, remap = sections
    assert [row[1] for row in load.rows] == ["300", "60", "300"]  # ours, naive (first 2 pages), read_json
    assert [row[3] for row in network.rows] == ["13", "4"]  # 1 client page + 3 pages per client
    assert {row[0] for row in rerun.rows} == set(reruns())  # every provider with a sandbox and a source
    ix = [row for row in rerun.rows if row[0] == "invoicexpress"]
    assert [row[4] for row in ix] == ["7", "7"]  # InvoiceXpress re-reads everything
    assert ix[0][5] == ix[1][5]  # and rewrites the same rows
    assert not ix[0][5].startswith("0 ")
    assert [row[0] for row in memory.rows] == ["200"]
    assert [row[1] for row in remap.rows] == ["300", "300", "300"]  # load path, remap unchanged, remap all
    assert all(target.measured for s in sections for target in s.targets)

    out = tmp_path / "benchmarks.md"
    report.write(report.render(sections, scale, 1.0), out)
    text = out.read_text()
    assert "DuckDB" in text and "cores:" in text and "## Targets" in text
