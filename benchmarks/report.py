"""The results as markdown tables: printed by `make bench` and written to docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

from benchmarks.common import REPO, Scale, Section

DOC = REPO / "docs" / "benchmarks.md"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_section(section: Section) -> str:
    """A section's heading, table and notes; a section without rows (a measurement skipped) is
    its heading alone."""
    parts = [f"## {section.title}"]
    if section.rows:
        parts += ["", _table(section.headers, section.rows)]
    if section.notes:
        parts += ["", *[f"- {note}" for note in section.notes]]
    return "\n".join(parts) + "\n"


def render_targets(sections: list[Section]) -> str:
    rows = [[t.name, t.goal, t.measured, "met" if t.met else "**not met**"] for s in sections for t in s.targets]
    return "## Targets\n\n" + _table(["target", "goal", "measured", ""], rows) + "\n"


def machine() -> list[str]:
    import dlt
    import duckdb
    import pyarrow

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"- cores: {cores} ({cpu})",
        *load_average(cores or 1),
        f"- Python {platform.python_version()}, dlt {dlt.__version__}, DuckDB {duckdb.__version__}, "
        f"pyarrow {pyarrow.__version__}, {platform.system()} {platform.release()}",
    ]


def load_average(cores: int) -> list[str]:
    """The machine's load when the document is written, and whether other work shared its cores."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return []
    line = f"- load average when written: {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 minutes)"
    if fifteen > cores:
        line += (
            f", more than its {cores} cores: the machine was shared with other work during the run, "
            "so the figures are slower and noisier than on an idle machine"
        )
    return [line]


def render(sections: list[Section], scale: Scale, seconds: float, mixed: bool = False) -> str:
    """The document; `mixed` when some sections come from earlier runs (`--only`)."""
    origin = (
        "the sections come from separate runs (`python -m benchmarks --only ...`) on the machine described "
        "here, each dated in its notes; every baseline is measured in the same run as the figures it is "
        "compared with."
        if mixed
        else "every figure below comes from one run on the machine described here, with its baselines "
        "measured in the same run."
    )
    head = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m benchmarks`); {origin} Each benchmark checks the loaded tables "
        "(row counts, exact sum of totals) before it reports a figure.",
        "",
        f"- run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {seconds / 60:.1f} minutes"
        + (" (BENCH_QUICK: smoke sizes, not representative)" if scale.quick else ""),
        *machine(),
        "",
    ]
    body = [render_section(s) for s in sections]
    return "\n".join(head) + "\n" + render_targets(sections) + "\n" + "\n".join(body)


def write(document: str, path: str | Path) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(document)
