"""A throwaway PostgreSQL cluster from the server binaries, and one database in it."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEBIAN_BINARIES = Path("/usr/lib/postgresql")
SUPERUSER = "billing"
PASSWORD = "throwaway"  # dlt's Postgres credentials require one
INSTALL_SERVER = (
    "Postgres tests skipped: PostgreSQL server binaries (initdb, pg_ctl) not found: "
    "install them with `apt-get install postgresql`"
)
INSTALL_EXTRA = "Postgres tests skipped: the Postgres driver is not installed: `make install EXTRAS=postgres`"


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
    run_as: str | None  # the system user running the server, when the tests run as root

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


@dataclass
class Database:
    """One empty database in the session's cluster."""

    cluster: Cluster
    name: str

    @property
    def url(self) -> str:
        return self.cluster.url(self.name)

    def env(self) -> dict[str, str]:
        """What points the pipeline CLI at this database."""
        return {"DESTINATION_TYPE": "postgres", "DESTINATION__POSTGRES__CREDENTIALS": self.url}

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.cluster.connect(self.name)) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params or None)
            return list(cursor.fetchall())

    def scalar(self, sql: str, *params: Any) -> Any:
        rows = self.query(sql, *params)
        return rows[0][0] if rows else None
