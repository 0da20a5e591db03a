"""One run at a time per warehouse: an OS file lock plus a record of who holds it.

The lock is `fcntl.flock` on a lock file: beside the DuckDB file (`warehouse.duckdb.lock.run`)
for DuckDB, and in the dlt pipelines folder (`<pipelines_dir>/<pipeline>.lock.run`) for every
destination, because dlt's local state of a pipeline is shared by all its runs whatever the
warehouse. The OS releases a flock when its process dies, however it dies (SIGKILL included), so
a stale lock never blocks a run; the holder record written into the file (process id, host,
start time, command) only serves to name the holder, and to say that a run took over the lock
of one that ended without releasing it.

The lock file is never deleted (deleting a flock'ed file lets two runs lock two different
files); a clean release empties the record. flock is not reliable across hosts on network file
systems: run one scheduler per warehouse.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("billing.run")

SUFFIX = ".lock.run"


class LockHeld(Exception):
    """Another run holds the lock; `holder` is its record (may be empty if it is just starting)."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path, self.holder = path, holder
        super().__init__(describe_held(path, holder))


def describe_held(path: Path, holder: dict[str, Any]) -> str:
    if holder:
        who = (
            f"process {holder.get('pid', '?')} on {holder.get('host', '?')}, "
            f"started {holder.get('started_at', '?')} ({holder.get('command', '?')})"
        )
    else:
        who = "a process that is just starting"
    return (
        f"another run holds the lock {path}: {who}. Nothing was done; this run exits with 3. "
        "If that run is stuck, stop it (kill its process id); a dead run's lock is taken over automatically."
    )


@dataclass
class RunLock:
    """An exclusive, non-blocking flock on `path`, with a holder record."""

    path: Path
    _fd: int | None = None

    def acquire(self, command: str) -> dict[str, Any]:
        """Take the lock or raise `LockHeld` at once; OSError when the file cannot be created.
        Returns the record a previous holder left (empty when it released the lock cleanly)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockHeld(self.path, holder) from None
            raise
        previous = _read(fd)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "command": command,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return previous

    def release(self) -> None:
        """Empty the record and unlock (the file stays: see the module docstring)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class RunLocks:
    """Several locks taken in order and released together (warehouse first, then local state)."""

    def __init__(self, paths: list[Path]) -> None:
        unique = list(dict.fromkeys(p.resolve() for p in paths))
        self.locks = [RunLock(p) for p in unique]

    def __enter__(self) -> RunLocks:
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "billing-elt"
        taken: list[RunLock] = []
        dead: list[tuple[Path, dict[str, Any]]] = []
        try:
            for lock in self.locks:
                previous = lock.acquire(command)
                taken.append(lock)
                if previous.get("pid"):
                    dead.append((lock.path, previous))
        except BaseException:
            for lock in reversed(taken):
                lock.release()
            raise
        if dead:
            previous = dead[0][1]
            log.warning(
                "took over the run lock %s from run %s on %s started %s, which ended without releasing it "
                "(killed?); what it left is checked next",
                ", ".join(str(p) for p, _ in dead),
                previous.get("pid"),
                previous.get("host", "?"),
                previous.get("started_at", "?"),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for lock in reversed(self.locks):
            lock.release()


def _read(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        value = json.loads(data.decode() or "{}")
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}
