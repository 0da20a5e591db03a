"""A throwaway PostgreSQL cluster for the Postgres tests, from Debian's server binaries.

One cluster per test session: `initdb` into a temporary directory, `pg_ctl start` on 127.0.0.1
and a free port, password authentication, no fsync; `pg_ctl stop` and the directory removed at the
end. `initdb` refuses to run as root, so under root the cluster runs as the `postgres` system
user that Debian's `postgresql` package creates (through `runuser`). Every test gets a database
of its own.

Without the server binaries or the `postgres` extra the tests are skipped, and the skip reason
(shown in pytest's summary) says what to install.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres.cluster import INSTALL_EXTRA, INSTALL_SERVER, Cluster, Database, free_port, server_binaries

RUN_AS_ROOT_USER = "postgres"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_AS_ROOT_USER)
    except KeyError:
        pytest.skip(
            "Postgres tests skipped: running as root, and initdb refuses root: "
            f"no `{RUN_AS_ROOT_USER}` system user to run the cluster as (`apt-get install postgresql` creates it)"
        )
    return RUN_AS_ROOT_USER


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster on 127.0.0.1 for the whole session, stopped and removed at the end."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip(INSTALL_EXTRA)
    bindir = server_binaries()
    if bindir is None:
        pytest.skip(INSTALL_SERVER)
    run_as = _run_as()
    root = Path(tempfile.mkdtemp(prefix="billing-pg-"))
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


@pytest.fixture
def pg_database(pg_cluster: Cluster) -> Iterator[Database]:
    """A fresh database for one test, dropped after it."""
    name = f"billing_test_{uuid.uuid4().hex[:12]}"
    with contextlib.closing(pg_cluster.connect()) as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield Database(pg_cluster, name)
    with contextlib.closing(pg_cluster.connect()) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
