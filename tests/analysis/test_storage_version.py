"""The warehouse file opens in DuckDB 1.4, as docs/configuration.md promises.

Two checks: the format DuckDB itself reports for the file (`duckdb_databases().tags`, always
run), and opening the file with a real DuckDB 1.4 wheel in a throwaway environment made by uv
(`uv run --with`, cached by uv after the first run). That second check is skipped, saying why,
only when no DuckDB 1.4 wheel can be had (no network and nothing cached)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.warehouse import STORAGE_VERSION, create_database_file, read_only, storage_version
from tests.support import REPO, Workspace

pytestmark = pytest.mark.integration

OLD_DUCKDB = "duckdb>=1.4,<1.5"
READ = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(duckdb.__version__, con.execute("SELECT count(*) FROM billing.invoices").fetchone()[0],
      con.execute("SELECT count(*) FROM billing.receivables_aging").fetchone()[0])
"""


def test_a_new_warehouse_file_is_written_in_the_v1_4_format(loaded: Workspace, tmp_path: Path) -> None:
    with read_only(loaded.db) as con:
        assert storage_version(con) == f"{STORAGE_VERSION}+"
    # the header's version number: 67 is what DuckDB 1.4 reads (64..67); the newest format is higher
    assert loaded.db.read_bytes()[8:12] == b"DUCK"
    assert int.from_bytes(loaded.db.read_bytes()[12:20], "little") <= 67
    assert create_database_file(tmp_path / "new.duckdb") and not create_database_file(tmp_path / "new.duckdb")


def uv_run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv", path=str(REPO / ".venv" / "bin")) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed: the DuckDB 1.4 check needs it")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    return subprocess.run(
        [uv, "run", "--no-project", "--quiet", "--python", sys.executable, "--with", OLD_DUCKDB, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_duckdb_1_4_opens_the_warehouse_and_its_views(loaded: Workspace) -> None:
    probe = uv_run("python", "-c", "import duckdb; print(duckdb.__version__)")
    if probe.returncode != 0:
        pytest.skip(f"no {OLD_DUCKDB} wheel could be had (offline, nothing cached): {probe.stderr.strip()[-300:]}")
    assert probe.stdout.startswith("1.4"), probe.stdout
    opened = uv_run("python", "-c", READ, str(loaded.db))
    assert opened.returncode == 0, opened.stderr
    version, invoices, aging = opened.stdout.split()
    assert version.startswith("1.4")
    assert int(invoices) == loaded.scalar("SELECT count(*) FROM billing.invoices") and int(aging) > 0
