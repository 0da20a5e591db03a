"""What every benchmark shares: the scale of a run, results with their targets, timing and
a throwaway dlt pipeline on a DuckDB file."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt
import duckdb

from sources.shared.provider import Provider

REPO = Path(__file__).resolve().parent.parent
SCRATCH = REPO / ".bench"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value.replace("_", "")) if value else default


@dataclass
class Scale:
    """How big each benchmark is. `full()` is what `make bench` runs; `quick()` is a smoke run.

    Attributes:
        load_n: invoices through the load path (ours and DuckDB's read_json).
        naive_n: invoices through the naive dlt baseline (it is slow; rates are per second).
        load_lines: lines per invoice (inclusive range; the mean is what matters).
        net_clients: clients of the network benchmark (3 pages of 30 documents each).
        baseline_clients: clients of the one-request-at-a-time baseline.
        budget_clients: clients of the run paced by the rate budget.
        latency: seconds the sandbox adds to every response.
        rerun_clients: clients of the rerun benchmark.
        memory_ns: invoices per memory run (each provider's first load of an account that size).
        memory_providers: the providers whose first loads the memory benchmark measures.
        wide_concurrency: an extra network run at this concurrency (0 skips it).
        accounts: accounts of the many-accounts benchmark (0 skips it).
        account_clients: the size of each of them (the sandbox's `bench_options(clients)`).
        history_invoices, history_reruns, history_observations: the invoice history benchmark.
    """

    load_n: int = 100_000
    naive_n: int = 10_000
    load_lines: tuple[int, int] = (3, 7)
    net_clients: int = 500
    baseline_clients: int = 100
    budget_clients: int = 300
    latency: float = 0.1
    rerun_clients: int = 100
    memory_ns: tuple[int, ...] = (100_000, 1_000_000)
    memory_providers: tuple[str, ...] = ("invoicexpress", "kitchen", "fohlio")
    wide_concurrency: int = 16
    accounts: int = 20
    account_clients: int = 25
    # benchmarks/history.py: invoices of its rerun, reruns of each variant, observations of its views.
    history_invoices: int = 100_000
    history_reruns: int = 3
    history_observations: int = 1_000_000
    quick: bool = False

    @classmethod
    def full(cls) -> Scale:
        return cls()

    @classmethod
    def quick_scale(cls) -> Scale:
        return cls(
            load_n=3_000,
            naive_n=1_000,
            net_clients=40,
            baseline_clients=10,
            budget_clients=0,
            latency=0.02,
            rerun_clients=10,
            memory_ns=(2_000, 10_000),
            wide_concurrency=0,
            accounts=4,
            account_clients=4,
            history_invoices=3_000,
            history_reruns=1,
            history_observations=40_000,
            quick=True,
        )

    @classmethod
    def from_env(cls, quick: bool | None = None) -> Scale:
        """`BENCH_QUICK=1` for a smoke run; `BENCH_N`, `BENCH_NAIVE_N`, `BENCH_CLIENTS`,
        `BENCH_BASELINE_CLIENTS`, `BENCH_BUDGET_CLIENTS` (0 skips the budget run),
        `BENCH_WIDE_CONCURRENCY` (0 skips it), `BENCH_MEMORY_NS` (comma-separated; empty skips),
        `BENCH_MEMORY_PROVIDERS` (comma-separated),
        `BENCH_ACCOUNTS` and `BENCH_ACCOUNT_CLIENTS` override single sizes."""
        if quick is None:
            quick = os.environ.get("BENCH_QUICK", "").strip() not in ("", "0", "false", "no")
        scale = cls.quick_scale() if quick else cls.full()
        scale.load_n = _env_int("BENCH_N", scale.load_n)
        scale.naive_n = min(scale.load_n, _env_int("BENCH_NAIVE_N", scale.naive_n))
        scale.net_clients = _env_int("BENCH_CLIENTS", scale.net_clients)
        scale.baseline_clients = _env_int("BENCH_BASELINE_CLIENTS", scale.baseline_clients)
        scale.budget_clients = _env_int("BENCH_BUDGET_CLIENTS", scale.budget_clients)
        ns = os.environ.get("BENCH_MEMORY_NS")
        if ns is not None:
            scale.memory_ns = tuple(int(n.replace("_", "")) for n in ns.split(",") if n.strip())
        providers = os.environ.get("BENCH_MEMORY_PROVIDERS")
        if providers is not None:
            scale.memory_providers = tuple(p.strip() for p in providers.split(",") if p.strip())
        scale.wide_concurrency = _env_int("BENCH_WIDE_CONCURRENCY", scale.wide_concurrency)
        scale.accounts = _env_int("BENCH_ACCOUNTS", scale.accounts)
        scale.account_clients = _env_int("BENCH_ACCOUNT_CLIENTS", scale.account_clients)
        return scale


@dataclass
class Target:
    """One target of the benchmark suite and whether this run met it."""

    name: str
    goal: str
    measured: str
    met: bool


@dataclass
class Section:
    """One benchmark's results: a table of figures side by side with its baselines."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


class CorrectnessError(AssertionError):
    """The loaded tables are not what the generator produced: no figure is reported."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CorrectnessError(message)


@dataclass
class Expected:
    """What a set of generated invoices must load as."""

    invoices: int = 0
    lines: int = 0
    total: Decimal = Decimal(0)

    def add(self, invoice: dict[str, Any]) -> None:
        self.invoices += 1
        self.lines += len(invoice.get("items") or [])
        self.total += Decimal(str(invoice["total"]))


@contextmanager
def environ(values: dict[str, str], unset_prefix: str | None = None) -> Iterator[None]:
    """Set environment variables for the block: dlt reads a source's config from them.
    `unset_prefix`: variables starting with it that `values` does not set are unset for the block."""
    unset = [k for k in os.environ if unset_prefix and k.startswith(unset_prefix) and k not in values]
    saved = {k: os.environ.get(k) for k in [*values, *unset]}
    for k in unset:
        del os.environ[k]
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def provider(name: str) -> Provider:
    """The provider `name` as the pipeline discovers it."""
    from pipelines.registry import discover

    return discover()[name]


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A scratch directory under .bench/, removed afterwards."""
    SCRATCH.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=SCRATCH))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def pipeline_in(path: Path, name: str = "bench") -> dlt.Pipeline:
    """A dlt pipeline whose state and DuckDB file live in `path` only, with the product's DuckDB
    destination and settings (`pipelines.warehouse`: bounded memory, insertion order not kept)."""
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    from pipelines.warehouse import DEFAULT_DUCKDB_MEMORY_LIMIT, billing_duckdb

    credentials = DuckDbCredentials(
        str(path / f"{name}.duckdb"),
        global_config={"memory_limit": DEFAULT_DUCKDB_MEMORY_LIMIT, "preserve_insertion_order": False},
    )
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(path / "pipelines"),
        destination=billing_duckdb(credentials=credentials, destination_name="duckdb"),
        dataset_name="billing",
    )


def plain_pipeline_in(path: Path, name: str) -> dlt.Pipeline:
    """A dlt pipeline with dlt's own DuckDB destination and every default."""
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(path / "pipelines"),
        destination=dlt.destinations.duckdb(str(path / f"{name}.duckdb")),
        dataset_name="billing",
    )


def db_path(path: Path, name: str = "bench") -> Path:
    return path / f"{name}.duckdb"


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def step_seconds(pipeline: dlt.Pipeline) -> dict[str, float]:
    """Seconds spent in each step (extract, normalize, load) of the pipeline's last run."""
    trace = pipeline.last_trace
    out: dict[str, float] = {}
    for step in trace.steps if trace else []:
        if step.finished_at and step.started_at and step.step in ("extract", "normalize", "load"):
            out[step.step] = (step.finished_at - step.started_at).total_seconds()
    return out


def rows_written(pipeline: dlt.Pipeline, tables: tuple[str, ...]) -> int:
    """Rows of `tables` in the last run's load package(s), as dlt's normalize step counted them."""
    info = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    counts = info.row_counts if info else {}
    return sum(int(counts.get(t, 0)) for t in tables)


class Timer:
    """`with Timer() as t: ...; t.seconds`."""

    seconds: float = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def fmt_s(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds >= 10 else f"{seconds:,.2f} s"


def fmt_x(ratio: float) -> str:
    return f"{ratio:,.1f}x" if ratio >= 10 else f"{ratio:,.2f}x"
