"""Memory: peak resident memory of the pipeline CLI's first load of N invoices from a provider's sandbox.

`billing-elt load` (`python -m pipelines.billing load`) runs in its own process in a clean directory,
as a user runs it, into an empty warehouse (a first load); the sandbox runs in another process, so
only the pipeline's memory is counted. The peak is the CLI's `ru_maxrss`, read with `os.wait4` when
it exits. Any provider whose sandbox package declares its benchmark sizing (`bench_options(clients)`)
can be measured: an account of N invoices is that sizing with as many clients as make N.

Measured in the same run beside the loads:
- the baseline: the peak of a process that only imports what the CLI's load imports;
- for each load, the CLI's RSS sampled from /proc, its median and its highest sample within each of
  dlt's steps (extract, normalize, load) and outside them: where the peak falls;
- the sandbox's CPU time during the load beside the CLI's, and how long the sandbox took to start
  (it generates its account first): a sandbox busy for the whole wall time, not the pipeline, sets
  the pace.

    python -m benchmarks.memory --providers kitchen,fohlio --sizes 10000,100000,300000
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO,
    Scale,
    Section,
    Target,
    Timer,
    check,
    fmt_int,
    fmt_s,
    fmt_x,
    provider,
    query,
    workdir,
)
from benchmarks.serve import SandboxProcess
from sandbox.server import available as sandboxes
from sources.shared.model import INVOICE_ITEMS, INVOICES

TITLE = "4. Memory: the pipeline CLI's first load of N invoices"
GIB = 1024**3
MIB = 2**20
PEAK_TARGET = GIB
GROWTH_TARGET = 1.3  # the streaming driver holds a page or two per listing, never a whole listing
_INHERITED_PREFIXES = (
    "SOURCES__",
    "DESTINATION__",
    "PROVIDERS",
    "PIPELINE_NAME",
    "DATASET_NAME",
    "DESTINATION_TYPE",
    "PIPELINES_DIR",
    "RUNTIME__",
)

# The CLI is started by a small launcher process that reports the CLI's peak and CPU time. Linux
# carries a process's peak RSS across fork and exec, so a CLI forked straight from this (large)
# benchmark process would report this process's own memory as its peak. The launcher also samples
# the CLI's RSS from /proc every SAMPLE_SECONDS (time.monotonic(), KiB), to tell a plateau from a
# spike and to see in which of dlt's steps the peak falls.
SAMPLE_SECONDS = 0.25
LAUNCHER = f"""
import json, os, subprocess, sys, threading, time
proc = subprocess.Popen(sys.argv[2:])
samples, done = [], threading.Event()
def sample():
    while not done.wait({SAMPLE_SECONDS}):
        try:
            with open(f"/proc/{{proc.pid}}/status") as status:
                rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            continue
        samples.append((time.monotonic(), rss))
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
_, status, usage = os.wait4(proc.pid, 0)
done.set()
sampler.join()
with open(sys.argv[1], "w") as out:
    json.dump({{"code": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss,
               "cpu": usage.ru_utime + usage.ru_stime, "samples": samples}}, out)
"""

# The CLI as `billing-elt` runs it, each of dlt's steps (extract, normalize, load of every
# `pipeline.run`: the account's, the history's, the reference rates', the checks') noted in the file
# `sys.argv[1]` with the name of what its run extracts (the account's source is named after its
# provider), its start and its end (time.monotonic(), the same clock as the launcher's samples).
CLI = """
import runpy, sys, time
from dlt.pipeline.pipeline import Pipeline
steps, extracting = open(sys.argv[1], "a", buffering=1), ["-"]
def timed(step, method):
    def run(self, *args, **kwargs):
        if step == "extract":
            data = args[0] if args else kwargs.get("data")
            extracting[0] = str(getattr(data, "name", None) or "-").replace(" ", "_")
        started = time.monotonic()
        try:
            return method(self, *args, **kwargs)
        finally:
            steps.write(f"{step} {extracting[0]} {started} {time.monotonic()}\\n")
    return run
for step in ("extract", "normalize", "load"):
    setattr(Pipeline, step, timed(step, getattr(Pipeline, step)))
sys.argv = ["billing-elt", *sys.argv[2:]]
runpy.run_module("pipelines.billing", run_name="__main__", alter_sys=True)
"""
STEPS = ("extract", "normalize", "load")

# The baseline: what the CLI's load imports, and nothing run.
IMPORTS = (
    "import dlt, duckdb, pyarrow, pyarrow.parquet, pipelines.cli, pipelines.warehouse; "
    "from pipelines.registry import discover; [p.source for p in discover().values()]"
)


@dataclass
class Usage:
    """What the launcher reports of the process it ran."""

    code: int
    peak_bytes: int
    cpu: float
    seconds: float
    samples: list[tuple[float, int]]  # (time.monotonic(), RSS in KiB)

    def median_bytes(self) -> int | None:
        """The median of the sampled RSS: where the process spent its run."""
        return int(statistics.median(rss for _, rss in self.samples)) * 1024 if self.samples else None

    def by_step(self, steps: list[Step], source: str) -> dict[str, int | None]:
        """The highest sampled RSS in bytes within each of dlt's steps of the runs of `source` (the
        account's), and elsewhere (`other`: the other runs, the imports, the run's own queries); None
        where no sample fell (a step shorter than the sampling interval)."""
        peaks: dict[str, int | None] = dict.fromkeys((*STEPS, "other"))
        for at, rss in self.samples:
            kind = next((s.kind for s in steps if s.source == source and s.start <= at <= s.end), "other")
            peaks[kind] = max(peaks[kind] or 0, rss * 1024)
        return peaks


@dataclass
class Step:
    """One of dlt's steps in the CLI: extract, normalize or load of a run of `source`."""

    kind: str
    source: str
    start: float
    end: float


@dataclass
class MemoryRun:
    provider: str
    invoices: int
    lines: int
    requests: int
    seconds: float
    peak_bytes: int
    median_bytes: int | None
    step_peaks: dict[str, int | None]
    cpu: float
    sandbox_cpu: float | None
    sandbox_start: float
    sandbox_peak_bytes: int | None


def launch(command: list[str], work: Path, env: dict[str, str], log: Path) -> Usage:
    """Run `command` (a Python process) through the launcher in `work`; its exit code, peak RSS,
    CPU time (user + system) and wall time."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    full_env.update(
        PYTHONPATH=str(REPO),
        PIPELINES_DIR=str(work / "pipelines"),
        DESTINATION__DUCKDB__CREDENTIALS=str(work / "warehouse.duckdb"),
        PROGRESS_INTERVAL="0",
        SOURCES__ECB__ENABLED="false",  # the reference rates from the shipped history, no request to the ECB
        **env,
    )
    result = work / "peak.json"
    with log.open("wb") as out, Timer() as timer:
        subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(result), *command],
            cwd=work,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    peak = json.loads(result.read_text())
    samples = [(float(t), int(rss)) for t, rss in peak["samples"]]
    return Usage(int(peak["code"]), int(peak["maxrss_kib"]) * 1024, float(peak["cpu"]), timer.seconds, samples)


def baseline() -> Usage:
    """The peak of a process that imports what the CLI's load imports and runs nothing."""
    with workdir("memory-") as work:
        usage = launch([sys.executable, "-c", IMPORTS], work, {}, work / "imports.log")
        check(usage.code == 0, f"memory: the imports failed:\n{(work / 'imports.log').read_text()[-3000:]}")
    return usage


def account(name: str, invoices: int) -> dict[str, Any]:
    """`create_app` options of an account of about `invoices` invoices: the sandbox's benchmark sizing
    (`bench_options(clients)` in `sandbox/<provider>/__init__.py`) with as many clients as make them."""
    create_app = sandboxes()[name]
    sizing = getattr(importlib.import_module(create_app.__module__), "bench_options", None)
    if not callable(sizing):
        raise ValueError(f"the {name} sandbox declares no bench_options(clients): its memory cannot be measured")
    probe = 10
    per_client = create_app(**sizing(probe), fixtures=False).summary()["invoices"] / probe
    return dict(sizing(max(1, round(invoices / per_client))))


def _proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a live process, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_peak(pid: int) -> int | None:
    """A live process's peak RSS (VmHWM) in bytes, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _check(work: Path, name: str, sandbox: SandboxProcess) -> tuple[int, int]:
    """The warehouse holds what the sandbox served (its tally, when it keeps one) or holds (its
    summary): invoice and line counts and exact totals. Returns the invoice and line counts."""
    db = work / "warehouse.duckdb"
    (invoices, lines) = query(
        db,
        f"SELECT (SELECT count(*) FROM billing.{INVOICES}), (SELECT count(*) FROM billing.{INVOICE_ITEMS})",
    )[0]
    served = sandbox.stats()
    if "invoices" in served:
        upstream = served
        (total,) = query(db, f"SELECT sum(total) FROM billing.{INVOICES}")[0]
        totals, expected = {"all": Decimal(total)}, {"all": Decimal(served["total"])}
    else:
        upstream = sandbox.summary()
        by_currency = query(db, f"SELECT currency, sum(total) FROM billing.{INVOICES} GROUP BY 1")
        totals = {k: Decimal(v) for k, v in by_currency}
        expected = {k: Decimal(str(v)) for k, v in upstream["totals"].items()}
    check(invoices == upstream["invoices"], f"memory {name}: {invoices} invoices loaded, {upstream['invoices']} served")
    check(lines == upstream["lines"], f"memory {name}: {lines} lines loaded, {upstream['lines']} served")
    check(totals == expected, f"memory {name}: totals {totals} != served {expected}")
    return int(invoices), int(lines)


def measure(name: str, n: int, keep: Path | None = None) -> MemoryRun:
    """A first load of an account of about `n` invoices of provider `name`; `keep`: a directory to
    copy the CLI's log and its RSS samples (CSV) into."""
    options = {**account(name, n), "requests_per_minute": None}
    started = time.perf_counter()
    with (
        SandboxProcess(name, **options) as sandbox,
        workdir("memory-") as work,
    ):
        ready = time.perf_counter() - started
        env = dict(sandbox.env, PROVIDERS=name, **{provider(name).env("requests_per_minute"): "0"})
        cpu_before = _proc_cpu(sandbox.proc.pid)
        steps_file = work / "steps.txt"
        usage = launch([sys.executable, "-c", CLI, str(steps_file), "load"], work, env, work / "cli.log")
        cpu_after = _proc_cpu(sandbox.proc.pid)
        sandbox_peak = _proc_peak(sandbox.proc.pid)
        log = (work / "cli.log").read_text()
        check(usage.code == 0, f"memory {name}: the CLI failed ({usage.code}):\n{log[-3000:]}")
        requests = int(sandbox.stats()["requests"])
        invoices, lines = _check(work, name, sandbox)
        steps = [Step(k, s, float(a), float(b)) for k, s, a, b in map(str.split, steps_file.read_text().splitlines())]
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(work / "cli.log", keep / f"{name}-{invoices}.log")
            start = usage.samples[0][0] if usage.samples else 0.0
            rss = "".join(f"{t - start:.2f},{kib}\n" for t, kib in usage.samples)
            (keep / f"{name}-{invoices}-rss.csv").write_text("seconds,rss_kib\n" + rss)
            spans = "".join(f"{s.kind},{s.source},{s.start - start:.2f},{s.end - start:.2f}\n" for s in steps)
            (keep / f"{name}-{invoices}-steps.csv").write_text("step,source,start,end\n" + spans)
    sandbox_cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return MemoryRun(
        name,
        invoices,
        lines,
        requests,
        usage.seconds,
        usage.peak_bytes,
        usage.median_bytes(),
        usage.by_step(steps, name),
        usage.cpu,
        sandbox_cpu,
        ready,
        sandbox_peak,
    )


def _mib(n: float) -> str:
    return f"{n / MIB:,.0f} MiB"


def section(base: Usage, runs: list[MemoryRun]) -> Section:
    """The figures beside the baseline; each load's growth over the same provider's next smaller one
    (and its smallest), the target on the largest two."""
    imports = ["imports only (baseline)", "-", "-", "-", fmt_s(base.seconds), f"{base.cpu:.1f} s / -", "-", "-"]
    rows = [[*imports, _mib(base.peak_bytes), "-", "-", "-", "-"]]
    targets: list[Target] = []
    by_provider: dict[str, list[MemoryRun]] = {}
    for r in runs:
        by_provider.setdefault(r.provider, []).append(r)
    for name, mine in by_provider.items():
        mine.sort(key=lambda r: r.invoices)
        for before, r in zip([None, *mine], mine, strict=False):
            growth = "-"
            if before is not None:
                growth = fmt_x(r.peak_bytes / before.peak_bytes)
                if before is not mine[0]:
                    growth += f" ({fmt_x(r.peak_bytes / mine[0].peak_bytes)} over {mine[0].invoices:,})"
            sandbox_cpu = "-" if r.sandbox_cpu is None else f"{r.sandbox_cpu:,.1f} s"
            rows.append(
                [
                    r.provider,
                    fmt_int(r.invoices),
                    fmt_int(r.lines),
                    fmt_int(r.requests),
                    fmt_s(r.seconds),
                    f"{r.cpu:,.1f} s / {sandbox_cpu}",
                    fmt_s(r.sandbox_start),
                    fmt_int(r.invoices / r.seconds),
                    _mib(r.peak_bytes),
                    "-" if r.median_bytes is None else _mib(r.median_bytes),
                    " / ".join("-" if p is None else f"{p / MIB:,.0f}" for p in r.step_peaks.values()),
                    f"+{_mib(r.peak_bytes - base.peak_bytes)}",
                    growth,
                ]
            )
        largest, peak = mine[-1], max(r.peak_bytes for r in mine)
        targets.append(
            Target(
                f"{name}: peak RSS of a first load of up to {largest.invoices:,} invoices",
                "< 1 GiB",
                _mib(peak),
                peak < PEAK_TARGET,
            )
        )
        if len(mine) > 1:
            before = mine[-2]
            ratio = largest.peak_bytes / before.peak_bytes
            targets.append(
                Target(
                    f"{name}: peak RSS growth, {before.invoices:,} → {largest.invoices:,} invoices",
                    f"< {GROWTH_TARGET}x",
                    fmt_x(ratio),
                    ratio < GROWTH_TARGET,
                )
            )
    sandbox_peaks = ", ".join(
        f"{r.provider} {r.invoices:,}: {_mib(r.sandbox_peak_bytes)}" for r in runs if r.sandbox_peak_bytes is not None
    )
    notes = [
        "`billing-elt load` in its own process in a clean directory, a first load into an empty DuckDB file, against "
        "the provider's sandbox in another process (no latency, budgets off on both sides), sized by the sandbox's "
        "`bench_options(clients)`; peak = the CLI's ru_maxrss (os.wait4 in a small launcher process). Checked: "
        "invoice and line counts and exact totals in DuckDB equal what the sandbox served or holds.",
        "Baseline: the peak of a process that imports what the load imports (dlt, DuckDB, Arrow, the CLI and every "
        "provider's source) and runs nothing, measured in the same run; a load's peak minus it is what the load "
        "itself added. Growth: a load's peak ÷ the peak of the same provider's next smaller load (in brackets, "
        "÷ its smallest load's). Median RSS: of the "
        f"CLI's RSS sampled every {SAMPLE_SECONDS} s (/proc), where the run spent its time; well under the peak, "
        "the peak is a spike. Sampled peak by step: the highest sample within dlt's extract, normalize and load "
        "steps of the account's runs (timed by wrapping dlt's Pipeline methods in the CLI's process), and "
        "elsewhere: the history's, the reference rates' and the checks' runs, the queries between them.",
        "CPU: user + system seconds of the CLI (every thread, DuckDB's included) and of the sandbox process during "
        "the load (from /proc); a sandbox CPU time near the wall time means the sandbox, not the pipeline, set the "
        "pace. Sandbox start: until it served, generating its account (the pipeline is not running yet). The "
        "sandbox's own peak, not counted: " + (sandbox_peaks or "not read") + ".",
        "Where the memory goes shows in the sampled peaks by step: DuckDB's part, from the load step on, is bounded "
        "by the warehouse's duckdb_memory_limit (default 256MB; DuckDB spills to disk beyond it); what rises with N "
        "through the extract is the Python process's own (dlt, Arrow, the run's per-invoice bookkeeping such as "
        "the ids a listing held, kept for deletions and the checks).",
    ]
    return Section(
        TITLE,
        [
            "provider",
            "invoices",
            "lines",
            "requests",
            "wall",
            "CPU: pipeline / sandbox",
            "sandbox start",
            "invoices/s",
            "peak RSS",
            "median RSS",
            "sampled peak (MiB): the account's extract / normalize / load / elsewhere",
            "peak over baseline",
            "growth",
        ],
        rows,
        notes,
        targets,
    )


def run(scale: Scale, keep: Path | None = None) -> Section:
    base = baseline()
    runs = [measure(name, n, keep) for name in scale.memory_providers for n in sorted(scale.memory_ns)]
    return section(base, runs)


def main(argv: list[str] | None = None) -> int:
    from benchmarks import report

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.memory", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--providers", default=",".join(Scale.memory_providers), help="comma-separated providers")
    parser.add_argument("--sizes", default=",".join(map(str, Scale.memory_ns)), help="comma-separated invoice counts")
    parser.add_argument("--keep", type=Path, help="a directory to keep each load's CLI log and RSS samples in")
    args = parser.parse_args(argv)
    scale = Scale(
        memory_providers=tuple(p.strip() for p in args.providers.split(",") if p.strip()),
        memory_ns=tuple(int(n.replace("_", "")) for n in args.sizes.split(",") if n.strip()),
    )
    unknown = [p for p in scale.memory_providers if p not in sandboxes()]
    if unknown:
        parser.error(f"no sandbox for {', '.join(unknown)}")
    started = time.monotonic()
    result = run(scale, args.keep)
    print(report.render_section(result))
    print(report.render_targets([result]))
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
