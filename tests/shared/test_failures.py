"""Why a run could not write, in one paragraph (pipelines/failures.py): the exception chain read,
the condition checked on the file system or the network itself."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.failures import Stopped, Where, chain, check_duckdb_file, check_pipelines_dir, explain, find, stop_signal


class Wrapped(Exception):
    """An exception that holds another one as an attribute, as dlt's wrappers do."""

    def __init__(self, inner: BaseException, attribute: str = "exception") -> None:
        super().__init__("wrapped")
        setattr(self, attribute, inner)


def where(tmp_path: Path, database: Path | None = None, destination: str = "duckdb") -> Where:
    return Where(destination, database, tmp_path / "pipelines")


def test_the_chain_holds_causes_contexts_and_what_wrappers_hold_once_each() -> None:
    root = OSError(errno.ENOSPC, "No space left on device")
    inner = Wrapped(root, "inner_exc")
    load = RuntimeError("load failed")
    load.__cause__ = inner
    handling = KeyError("while handling")
    load.__context__ = handling
    outer = Wrapped(load)
    outer.__context__ = outer  # a cycle is walked once
    found = list(chain(outer))
    assert found[0] is outer
    assert sorted(map(id, found)) == sorted(map(id, [outer, load, inner, root, handling]))
    assert find(outer, OSError) is root and find(outer, ValueError) is None


def test_a_stop_signal_is_found_in_the_chain() -> None:
    assert stop_signal(Wrapped(Stopped(15))) == 15

    class SignalReceived(Exception):
        signal_code = 2

    error = RuntimeError("extract failed")
    error.__cause__ = SignalReceived()
    assert stop_signal(error) == 2
    assert stop_signal(RuntimeError("no signal")) is None


def test_a_full_disk_is_told_with_the_file_system_and_its_free_space(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    full = OSError(errno.ENOSPC, "No space left on device", str(database))
    message = explain(RuntimeError("load failed"), where(tmp_path, database))
    assert message is None  # nothing in the chain: not ours to explain
    error = RuntimeError("load failed")
    error.__cause__ = full
    message = explain(error, where(tmp_path, database))
    assert message is not None
    assert message.startswith(f"the disk is full: no space left on the file system of {database} (")
    assert "MB left)" in message and f"dlt's local state is in {tmp_path / 'pipelines'}" in message

    unnamed = OSError(errno.ENOSPC, "No space left on device")
    assert (explain(unnamed, where(tmp_path, database)) or "").startswith("the disk is full")


def test_an_unwritable_local_state_folder_is_named(tmp_path: Path) -> None:
    state_file = tmp_path / "pipelines" / "billing" / "state.json"
    denied = PermissionError(errno.EACCES, "Permission denied", str(state_file))
    message = explain(Wrapped(denied), where(tmp_path, tmp_path / "warehouse.duckdb"))
    assert message == (
        f"dlt's local state folder {tmp_path / 'pipelines'} cannot be written ({state_file}: Permission denied). "
        "dlt keeps the pipeline's state and its load packages there. Make it writable for the user running "
        "the load, or point PIPELINES_DIR (pipelines_dir in .dlt/config.toml) at a folder that is."
    )
    assert check_pipelines_dir(where(tmp_path)) is None  # this one can be written


def held_by_another_process(database: Path, read_only: bool) -> str | None:
    """What a failed open of `database` says while another process has it open."""
    if read_only:
        duckdb.connect(str(database)).close()  # a reader needs a file to open
    hold = (
        "import duckdb, sys, time\n"
        f"c = duckdb.connect(sys.argv[1], read_only={read_only})\nprint('held', flush=True)\ntime.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-I", "-c", hold, str(database)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(duckdb.Error) as refused:
            duckdb.connect(str(database))
        message = explain(Wrapped(refused.value), where(database.parent, database))
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert message is not None
    assert f"(PID {holder.pid}: " in message
    return message


def test_a_warehouse_file_a_reader_holds_open_read_only_is_told_so(tmp_path: Path) -> None:
    message = held_by_another_process(tmp_path / "warehouse.duckdb", read_only=True) or ""
    assert message.startswith(f"the warehouse file {tmp_path / 'warehouse.duckdb'} is open in another process")
    assert "read-only. DuckDB lets no process write a file while another has it open" in message
    assert "-readonly" not in message  # the advice for a writer would not help


def test_a_warehouse_file_another_process_writes_is_named_with_that_process(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    message = held_by_another_process(database, read_only=False) or ""
    assert message.startswith(f"the warehouse file {database} is in use by another process (PID ")
    assert "DuckDB lets only one process write a file" in message
    assert check_duckdb_file(where(tmp_path, database)) is None  # free again once that process is gone


def test_a_warehouse_file_in_a_missing_folder_is_told(tmp_path: Path) -> None:
    database = tmp_path / "missing" / "warehouse.duckdb"
    message = explain(duckdb.IOException("Cannot open file"), where(tmp_path, database))
    assert message == (
        f"the folder of the warehouse file, {database.parent}, does not exist. Create it or correct "
        "DESTINATION__DUCKDB__CREDENTIALS."
    )
    assert check_duckdb_file(where(tmp_path, database)) is None  # nothing to check before it exists


def test_a_duckdb_error_with_nothing_wrong_on_disk_is_left_to_the_caller(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(database)).close()
    assert (
        explain(duckdb.CatalogException("Table with name invoices does not exist"), where(tmp_path, database)) is None
    )
    assert explain(ValueError("a bug"), where(tmp_path, database)) is None


class OperationalError(Exception):
    """Stands for the Postgres driver's error: matched by its module, as psycopg's are."""

    __module__ = "psycopg2"

    def __init__(self, pgcode: str | None = None) -> None:
        super().__init__("connection failed")
        self.pgcode = pgcode


def test_a_postgres_server_that_refuses_connections_or_the_login_is_told_apart(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused = explain(OperationalError(), Where("postgres", None, tmp_path, f"postgresql://u:p@127.0.0.1:{port}/db"))
    assert refused is not None
    assert refused.startswith(f"the Postgres server 127.0.0.1:{port} refused the connection: nothing listens")

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        credentials = f"postgresql://loader:pw-0451@127.0.0.1:{port}/billing"
        login = explain(OperationalError("28P01"), Where("postgres", None, tmp_path, credentials))
        query = explain(OperationalError("42P01"), Where("postgres", None, tmp_path, credentials))
    assert login is not None and "refused the login of user loader to database billing" in login
    assert "pw-0451" not in login
    assert query is None  # connected, then a query failed: not a connection problem
    assert explain(RuntimeError("x"), Where("postgres", None, tmp_path, credentials)) is None
