"""A throwaway PostgreSQL cluster from the server binaries, for the Postgres tests (tests/postgres/)
and the Postgres load benchmark.

`throwaway_cluster()`: `initdb` into a temporary directory, `pg_ctl start` on 127.0.0.1 and a free
port, password authentication, no fsync; `pg_ctl stop` and the directory removed at the end.
`initdb` refuses to run as root, so under root the cluster runs as the `postgres` system user that
Debian's `postgresql` package creates (through `runuser`). `unavailable()` says why no cluster can
be started here (no Postgres driver, no server binaries, root without that user), or None.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEBIAN_BINARIES = Path("/usr/lib/postgresql")
SUPERUSER = "billing"
PASSWORD = "throwaway"  # dlt's Postgres credentials require one
RUN_AS_ROOT_USER = "postgres"
NO_SERVER = "PostgreSQL server binaries (initdb, pg_ctl) not found: install them with `apt-get install postgresql`"
NO_DRIVER = "the Postgres driver is not installed: `make install EXTRAS=postgres`"
NO_USER = (
    "running as root, and initdb refuses root: "
    f"no `{RUN_AS_ROOT_USER}` system user to run the cluster as (`apt-get install postgresql` creates it)"
)


class Unavailable(Exception):
    """No throwaway cluster can be started on this machine; the message says why and what to install."""


def server_binaries() -> Path | None:
    """The newest `/usr/lib/postgresql/<version>/bin` with initdb and pg_ctl, else the directory
    of `pg_ctl` on the PATH, else None."""

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name))

    debian = [b for b in DEBIAN_BINARIES.glob("*/bin") if (b / "initdb").exists() and (b / "pg_ctl").exists()]
    if debian:
        return max(debian, key=version)
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    return None


def _run_as() -> str | None:
    """The system user the server runs as: None (this one) unless this is root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_AS_ROOT_USER)
    except KeyError:
        raise Unavailable(NO_USER) from None
    return RUN_AS_ROOT_USER


def unavailable() -> str | None:
    """Why no throwaway cluster can be started here, or None when one can."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return NO_DRIVER
    if server_binaries() is None:
        return NO_SERVER
    try:
        _run_as()
    except Unavailable as exc:
        return str(exc)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster."""

    bindir: Path
    root: Path
    port: int
    run_as: str | None  # the system user running the server, when this process runs as root

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def command(self, program: str, *args: str) -> list[str]:
        argv = [str(self.bindir / program), *args]
        return ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else argv

    def run(self, program: str, *args: str) -> None:
        proc = subprocess.run(self.command(program, *args), cwd=self.root, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}\n{log}")

    def start(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(PASSWORD + "\n")
        password_file.chmod(0o644)  # readable by the server's user
        initdb = ("-D", str(self.data), "-U", SUPERUSER, f"--pwfile={password_file}", "--auth=scram-sha-256")
        self.run("initdb", *initdb, "-E", "UTF8", "--no-locale", "--no-sync")
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def connect(self, database: str = "postgres") -> Any:
        import psycopg2

        connection = psycopg2.connect(self.url(database))
        connection.autocommit = True
        return connection

    def create_database(self, name: str) -> None:
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def throwaway_cluster(prefix: str = "billing-pg-") -> Iterator[Cluster]:
    """A PostgreSQL cluster on 127.0.0.1 for the block, stopped and removed afterwards.

    Raises:
        Unavailable: no cluster can be started here (see `unavailable`).
    """
    reason = unavailable()
    bindir = server_binaries()
    if reason is not None or bindir is None:
        raise Unavailable(reason or NO_SERVER)
    run_as = _run_as()
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if run_as:
        shutil.chown(root, user=run_as)
    cluster = Cluster(bindir, root, free_port(), run_as)
    try:
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            if (cluster.data / "postmaster.pid").exists():
                cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
