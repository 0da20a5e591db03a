"""Failures explained in one paragraph, through the real command line: the warehouse file held by
another process or read-only, its folder or dlt's state folder unwritable, a full disk, a Postgres
server that refuses (docs/operations.md, "What a run tells you when something goes wrong")."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from sandbox import fohlio
from tests.support import Workspace, serve
from tests.unattended.test_unattended import explained, script

pytestmark = pytest.mark.integration


# --- failures explained -----------------------------------------------------------------------


def test_a_warehouse_another_process_holds_is_named_with_its_pid(workspace, app):
    _, env = app
    assert script(workspace, env).code == 0
    holder = duckdb.connect(str(workspace.db))
    try:
        result = script(workspace, env)
    finally:
        holder.close()
    assert result.code == 1
    text = explained(result)
    assert f"is in use by another process (PID {os.getpid()}" in text, text
    assert "→ Kitchen" not in text  # found before any provider ran


def test_an_immutable_warehouse_file_is_said_so(workspace, app):
    _, env = app
    assert script(workspace, env).code == 0
    if subprocess.run(["chattr", "+i", str(workspace.db)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        result = script(workspace, env)
    finally:
        subprocess.run(["chattr", "-i", str(workspace.db)], check=True)
    assert result.code == 1
    assert "is immutable" in explained(result)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` read-only for the run: by its mode for a normal user; for root, whom modes do not
    stop, a folder made immutable (nothing can be created in it) or a file on a read-only bind mount."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if path.is_dir():
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("chattr +i is not available here")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        return
    folder = str(path.parent)
    if subprocess.run(["mount", "--bind", "-o", "ro", folder, folder], capture_output=True).returncode:
        pytest.skip("cannot bind-mount read-only here")
    try:
        yield
    finally:
        subprocess.run(["umount", folder], check=True)


def test_a_read_only_warehouse_file_is_said_so(workspace, app):
    _, env = app
    data = workspace.path / "data"
    data.mkdir()
    env = {**env, "DESTINATION__DUCKDB__CREDENTIALS": str(data / "warehouse.duckdb")}
    assert script(workspace, env).code == 0
    with read_only(data / "warehouse.duckdb"):
        result = script(workspace, env)
    assert result.code == 1
    text = explained(result)
    assert re.search(
        rf"the warehouse file {data / 'warehouse.duckdb'} (is read-only|is on a read-only file system)", text
    )
    assert "→ Kitchen" not in text


def test_a_read_only_warehouse_folder_is_said_so(workspace, app):
    _, env = app
    assert script(workspace, env).code == 0
    with read_only(workspace.path):
        result = script(workspace, env)
    assert result.code == 1
    assert f"the folder {workspace.path} of the warehouse file is read-only" in explained(result), result.output


def test_an_unwritable_dlt_state_folder_is_said_so(workspace, app):
    _, env = app
    assert script(workspace, env).code == 0
    with read_only(workspace.path / "pipelines"):
        result = script(workspace, env)
    assert result.code == 1
    text = explained(result)
    assert f"dlt's local state folder {workspace.path / 'pipelines'}" in text and "PIPELINES_DIR" in text, text


def test_a_full_disk_is_said_once_with_what_the_run_did_not_try(app, tmp_path):
    _, env = app
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(tiny)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    fohlio_app = fohlio.create_app()
    try:
        with serve(fohlio_app) as server:
            env = {**env, **fohlio_app.pipeline_env(server.url), "PROVIDERS": "kitchen,fohlio"}
            ws = Workspace(tmp_path)
            result = script(ws, {**env, "DESTINATION__DUCKDB__CREDENTIALS": str(tiny / "warehouse.duckdb")})
    finally:
        subprocess.run(["umount", str(tiny)], check=True)
    assert result.code == 1
    text = explained(result)
    assert text.count("the disk is full: no space left on the file system of") == 1, text
    assert f"the disk is full: no space left on the file system of {tiny}" in text
    # what it did not try, once; nothing later failing the same way, nothing of dlt's advice
    assert re.search(r"the disk is full: the run ended there\. Not tried: .*the reference rates", text), text
    assert "→ euro reference rates" not in text and "views could not be refreshed" not in text, text
    assert "credentials" not in text and "internet connection" not in text, text
    assert len(result.stderr.splitlines()) < 30, result.stderr


@pytest.mark.skipif(shutil.which("postgres") is None, reason="no Postgres here")
def test_postgres_refused_is_said_so(workspace, app):
    pytest.importorskip("psycopg2")
    _, env = app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = script(
        workspace,
        {
            **env,
            "DESTINATION_TYPE": "postgres",
            "DESTINATION__POSTGRES__CREDENTIALS": f"postgresql://loader:secret-pw-1@127.0.0.1:{port}/warehouse",
        },
    )
    assert result.code == 1
    assert f"the Postgres server 127.0.0.1:{port} refused the connection" in explained(result)
    assert "secret-pw-1" not in result.output
