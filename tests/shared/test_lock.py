"""The run lock (pipelines/lock.py): one run at a time per lock file, the holder named, a dead
holder's lock taken over, and the file kept (emptied) on release."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.lock import LockHeld, RunLock, RunLocks

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, b'{"pid": %d, "host": "elsewhere", "started_at": "2025-01-01T00:00:00Z", "command": "billing-elt load"}'
          % os.getpid(), 0)
print("held", flush=True)
time.sleep(60)
"""


def test_a_lock_is_taken_with_a_record_of_its_holder_and_released_empty(tmp_path: Path) -> None:
    path = tmp_path / "state" / "billing.lock.run"
    lock = RunLock(path)
    assert lock.acquire("billing-elt load") == {}  # nobody held it before
    record = json.loads(path.read_text())
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    assert record["command"] == "billing-elt load" and record["started_at"].endswith("Z")

    lock.release()
    assert path.exists() and path.read_text() == ""  # kept, so two runs never lock two files
    lock.release()  # twice is harmless
    again = RunLock(path)
    assert again.acquire("billing-elt load") == {}  # a clean release leaves no previous holder
    again.release()


def test_a_held_lock_is_refused_at_once_naming_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb.lock.run"
    first = RunLock(path)
    first.acquire("billing-elt load --providers kitchen")
    try:
        with pytest.raises(LockHeld) as held:
            RunLock(path).acquire("billing-elt report")
    finally:
        first.release()
    assert held.value.holder["command"] == "billing-elt load --providers kitchen"
    message = str(held.value)
    assert f"another run holds the lock {path}: process {os.getpid()} on {socket.gethostname()}" in message
    assert "(billing-elt load --providers kitchen)" in message and "this run exits with 3" in message


def test_a_lock_held_by_another_process_is_refused_and_free_once_that_process_dies(tmp_path: Path) -> None:
    path = tmp_path / "billing.lock.run"
    holder = subprocess.Popen([sys.executable, "-I", "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match=rf"process {holder.pid} on elsewhere, started 2025-01-01T00:00:00Z"):
            RunLock(path).acquire("billing-elt load")
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    # Killed without releasing: the OS dropped its flock; its record tells who ran before.
    lock = RunLock(path)
    assert lock.acquire("billing-elt load") == {
        "pid": holder.pid,
        "host": "elsewhere",
        "started_at": "2025-01-01T00:00:00Z",
        "command": "billing-elt load",
    }
    lock.release()


def test_a_lock_held_by_a_process_just_starting_says_so(tmp_path: Path) -> None:
    path = tmp_path / "billing.lock.run"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # locked, no record written yet
    try:
        with pytest.raises(LockHeld, match="a process that is just starting"):
            RunLock(path).acquire("billing-elt load")
    finally:
        os.close(fd)


def test_locks_are_taken_in_order_and_a_refusal_releases_those_already_taken(tmp_path: Path) -> None:
    warehouse, state = tmp_path / "warehouse.duckdb.lock.run", tmp_path / "pipelines" / "billing.lock.run"
    locks = RunLocks([warehouse, state, tmp_path / "pipelines" / ".." / "warehouse.duckdb.lock.run"])
    assert [lock.path for lock in locks.locks] == [warehouse.resolve(), state.resolve()]  # the same file once

    other = RunLock(state)
    other.acquire("billing-elt load")
    try:
        with pytest.raises(LockHeld), locks:
            pass
        free = RunLock(warehouse)
        assert free.acquire("billing-elt load") == {}  # the first lock was given back
        free.release()
    finally:
        other.release()

    with locks:
        assert all(json.loads(lock.path.read_text())["pid"] == os.getpid() for lock in locks.locks)
    assert warehouse.read_text() == state.read_text() == ""


def test_taking_over_a_dead_run_s_lock_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "billing.lock.run"
    path.write_text(json.dumps({"pid": 4242, "host": "nightly", "started_at": "2025-01-01T02:00:00Z"}))
    with caplog.at_level(logging.WARNING, logger="billing.run"), RunLocks([path]):
        pass
    assert f"took over the run lock {path} from run 4242 on nightly started 2025-01-01T02:00:00Z" in caplog.text
    assert "ended without releasing it" in caplog.text
