"""Why a run could not write: the warehouse or the local state explained in one paragraph.

dlt reports every destination problem as "check if you configured the credentials ... your
internet connection may be down", whatever happened. This module says what did happen. It
matches by type: the errno of an `OSError` in the exception chain, the exception class of the
database driver, and, where the driver's error is generic (DuckDB raises one `IOException` for
a lock conflict, a read-only file and a full disk alike), by checking the condition itself on
the file system or the network: the file opened for writing, an advisory lock probe, a file
created in its folder, the free space, a TCP connection to the database server. Only the
process id of the holder of a DuckDB file is read from DuckDB's message, as a detail.

`explain(exc, where)` returns the paragraph, or None when the failure is none of these (the
caller then tells it in its own words). `Stopped` is how a SIGINT/SIGTERM travels up.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sources.shared import stop
from sources.shared.redact import redact

E = TypeVar("E", bound=BaseException)

READ_ONLY_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)
# Below this much free space a DuckDB write error is read as a full disk.
LOW_SPACE_BYTES = 16 * 1024 * 1024


Stopped = stop.Stopped


@dataclass(frozen=True)
class Where:
    """What a run writes to.

    Attributes:
        destination: `duckdb`, `postgres`, ...
        database: the DuckDB file (absolute), else None.
        pipelines_dir: the folder of dlt's local state of the pipeline.
        credentials: the destination's connection string (never printed), for a network probe.
    """

    destination: str
    database: Path | None
    pipelines_dir: Path
    credentials: str | None = None
    # The file system found full during this run, once told (`disk_full`): the run stops there.
    full: list[Path] = field(default_factory=list, compare=False, hash=False, repr=False)

    @property
    def disk_full(self) -> bool:
        return bool(self.full)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception in `exc`'s chain: causes, contexts, and what dlt's wrappers hold."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(
            [
                current.__cause__,
                current.__context__,
                getattr(current, "exception", None),
                getattr(current, "inner_exc", None),
            ]
        )


def find(exc: BaseException, kind: type[E]) -> E | None:
    return next((e for e in chain(exc) if isinstance(e, kind)), None)


def stop_signal(exc: BaseException) -> int | None:
    """The signal a run was stopped by, when `exc` says so (ours, or dlt's SignalReceivedException)."""
    for e in chain(exc):
        if isinstance(e, Stopped):
            return e.signum
        code = getattr(e, "signal_code", None)
        if isinstance(code, int):
            return code
    return None


def explain(exc: BaseException, where: Where) -> str | None:
    """One paragraph for a failure of the warehouse or of dlt's local state, or None."""
    os_error = _os_error(exc)
    if os_error is not None and os_error.errno == errno.ENOSPC:
        return disk_full(Path(os_error.filename) if os_error.filename else None, where)
    if os_error is not None and os_error.errno in READ_ONLY_ERRNOS and os_error.filename:
        path = Path(os.fspath(os_error.filename))
        if _inside(path, where.pipelines_dir):
            return pipelines_dir_unwritable(where.pipelines_dir, path, os_error)
        if where.database is not None and path.absolute().parent == where.database.parent:
            return _explain_duckdb(exc, where)  # the run lock beside the file, say
    if where.database is not None and _is_duckdb_error(exc):
        return _explain_duckdb(exc, where)
    if where.destination == "postgres":
        return _explain_postgres(exc, where)
    return None


def check_duckdb_file(where: Where) -> str | None:
    """Whether the DuckDB file and its folder can be written (checked before any provider runs;
    DuckDB itself only finds out at the first write). Call it before this process opens the file:
    closing a descriptor of a file drops every POSIX lock the process holds on it."""
    if where.database is None or not where.database.exists():
        return None
    return _explain_duckdb(None, where)


def check_pipelines_dir(where: Where) -> str | None:
    """Whether dlt can write its local state; the paragraph when it cannot."""
    folder = where.pipelines_dir
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:
        return None
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            return disk_full(existing, where)
        if exc.errno in READ_ONLY_ERRNOS:
            return pipelines_dir_unwritable(folder, existing, exc)
        raise
    return None


# --- paragraphs -----------------------------------------------------------------------------


def disk_full(path: Path | None, where: Where) -> str:
    """The paragraph for a full disk, the first time in a run; later failures of the same cause
    point back to it (a full disk fails every step that writes: it is said once)."""
    if path is None:  # the error does not say which file: the fuller of the two places a run writes
        places = [p for p in (where.database, where.pipelines_dir) if p is not None]
        path = min(places, key=lambda p: _free_bytes(p) or 0)
    if where.full:
        return f"the disk is full (the file system of {where.full[0]}, said above)"
    where.full.append(path)
    free = _free_bytes(path)
    left = f" ({free / 1e6:.1f} MB left)" if free is not None else ""
    return (
        f"the disk is full: no space left on the file system of {path}{left}. What the failing step was "
        "writing was not committed. Free some space (dlt's local state is in "
        f"{where.pipelines_dir}, the warehouse in {where.database or where.destination}) and run again: "
        "the next run completes what is pending and goes on from the last committed load."
    )


def pipelines_dir_unwritable(folder: Path, path: Path, exc: OSError) -> str:
    return (
        f"dlt's local state folder {folder} cannot be written ({path}: {os.strerror(exc.errno or 0)}). "
        "dlt keeps the pipeline's state and its load packages there. Make it writable for the user running "
        "the load, or point PIPELINES_DIR (pipelines_dir in .dlt/config.toml) at a folder that is."
    )


def _explain_duckdb(exc: BaseException | None, where: Where) -> str | None:
    database = where.database
    if database is None:
        return None
    folder = database.parent
    if database.exists():
        try:
            fd = os.open(database, os.O_RDWR | os.O_CLOEXEC)
        except OSError as open_error:
            if open_error.errno == errno.EPERM:
                return (
                    f"the warehouse file {database} cannot be written: the file is immutable (chattr +i) or "
                    "your system forbids writing it. Nothing was loaded. Remove the flag (`chattr -i`) "
                    "or point DESTINATION__DUCKDB__CREDENTIALS at a writable copy."
                )
            if open_error.errno in (errno.EACCES, errno.EROFS):
                what = "is on a read-only file system" if open_error.errno == errno.EROFS else "is read-only"
                return (
                    f"the warehouse file {database} {what} for the user running the load. Nothing was loaded. "
                    "Give that user write permission (or point DESTINATION__DUCKDB__CREDENTIALS at a writable "
                    "file); readers such as BI tools can still open it read-only."
                )
            raise
        try:
            # Only after DuckDB failed: closing any descriptor of a file drops every POSIX lock this
            # process holds on it, DuckDB's own included, so a file we may hold open is not probed.
            holder = _lock_holder(fd, exc) if exc is not None else None
            reading = holder is not None and _only_read(fd)
        finally:
            os.close(fd)
        if holder is not None and reading:
            return (
                f"the warehouse file {database} is open in another process{holder}, read-only. DuckDB lets no "
                "process write a file while another has it open, even read-only. Nothing was loaded. Close that "
                "connection for the time of the load (schedule the load when readers are not connected, or "
                "let them query a copy of the file) and run again."
            )
        if holder is not None:
            return (
                f"the warehouse file {database} is in use by another process{holder}. DuckDB lets only one "
                "process write a file, and none while another has it open for writing. Nothing was loaded. "
                "Close that program (or open the file read-only there: `duckdb -readonly`, or READ_ONLY in "
                "ATTACH) and run again."
            )
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except FileNotFoundError:
        return (
            f"the folder of the warehouse file, {folder}, does not exist. Create it or correct "
            "DESTINATION__DUCKDB__CREDENTIALS."
        )
    except OSError as folder_error:
        if folder_error.errno == errno.ENOSPC:
            return disk_full(folder, where)
        if folder_error.errno in READ_ONLY_ERRNOS:
            return (
                f"the folder {folder} of the warehouse file is read-only for the user running the load. "
                "DuckDB writes its write-ahead log (.wal) beside the file, so the folder must be writable. "
                "Nothing was loaded. Make the folder writable or move the file to one that is."
            )
        raise
    free = _free_bytes(folder)
    if free is not None and free < LOW_SPACE_BYTES:
        return disk_full(folder, where)
    return None


def _explain_postgres(exc: BaseException, where: Where) -> str | None:
    if not any(type(e).__module__.split(".")[0] in ("psycopg2", "psycopg") for e in chain(exc)):
        return None
    target = urlsplit(where.credentials or "")
    host, port = target.hostname or "localhost", target.port or 5432
    database = (target.path or "/").lstrip("/") or "?"
    server = f"the Postgres server {host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except ConnectionRefusedError:
        return (
            f"{server} refused the connection: nothing listens on that port. Nothing was loaded. Start the "
            "server, or correct the host and port in destination.postgres.credentials "
            "(DESTINATION__POSTGRES__CREDENTIALS)."
        )
    except socket.gaierror:
        return f"{server}: the host name {host} does not resolve. Correct destination.postgres.credentials."
    except OSError as network:
        return (
            f"{server} cannot be reached ({os.strerror(network.errno or 0) if network.errno else network}). "
            "Nothing was loaded. Check the network or the host in destination.postgres.credentials."
        )
    if not _connected_once(exc):
        user = target.username or "?"
        return (
            f"{server} refused the login of user {user} to database {database}: a wrong password, an unknown "
            "user or database, or a pg_hba.conf rule. Nothing was loaded. Correct destination.postgres.credentials "
            "(DESTINATION__POSTGRES__CREDENTIALS, in .dlt/secrets.toml)."
        )
    return None


# --- probes ---------------------------------------------------------------------------------


def _os_error(exc: BaseException) -> OSError | None:
    return next((e for e in chain(exc) if isinstance(e, OSError) and e.errno is not None), None)


def _is_duckdb_error(exc: BaseException) -> bool:
    try:
        import duckdb
    except ImportError:  # pragma: no cover
        return False
    return find(exc, duckdb.Error) is not None


def _connected_once(exc: BaseException) -> bool:
    """Whether the failure came after a session was opened (a query's error, not the login's)."""
    for e in chain(exc):
        if type(e).__name__ == "OperationalError" and type(e).__module__.startswith("psycopg"):
            return getattr(e, "pgcode", None) not in (None, "28P01", "28000", "3D000")
    return True


_PID = re.compile(r"\(PID (\d+)\)")


def _lock_holder(fd: int, exc: BaseException | None) -> str | None:
    """`" (PID 123: /usr/bin/dbeaver)"` when another process holds a lock on the file, else None."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as probe:
        if probe.errno not in (errno.EACCES, errno.EAGAIN):
            raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return None
    found = (_PID.search(str(e)) for e in chain(exc)) if exc is not None else iter(())
    pid = next((m.group(1) for m in found if m), None)
    if pid is None:
        return ""
    return f" (PID {pid}{_program(pid)})"


def _only_read(fd: int) -> bool:
    """Whether the lock another process holds on the file is a shared one: a read-only reader
    (DuckDB locks a file it writes exclusively)."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    fcntl.lockf(fd, fcntl.LOCK_UN)
    return True


def _program(pid: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    return f": {redact(' '.join(words)[:120])}" if words else ""


def _free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
