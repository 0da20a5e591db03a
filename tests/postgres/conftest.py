"""A throwaway PostgreSQL cluster for the Postgres tests, from Debian's server binaries.

One cluster per test session (`benchmarks.postgres_cluster.throwaway_cluster`): `initdb` into a
temporary directory, `pg_ctl start` on 127.0.0.1 and a free port, password authentication, no
fsync; `pg_ctl stop` and the directory removed at the end. `initdb` refuses to run as root, so
under root the cluster runs as the `postgres` system user that Debian's `postgresql` package
creates (through `runuser`). Every test gets a database of its own.

Without the server binaries or the `postgres` extra the tests are skipped, and the skip reason
(shown in pytest's summary) says what to install.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from benchmarks.postgres_cluster import Cluster, throwaway_cluster, unavailable
from tests.postgres.cluster import Database


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster on 127.0.0.1 for the whole session, stopped and removed at the end."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"Postgres tests skipped: {reason}")
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_database(pg_cluster: Cluster) -> Iterator[Database]:
    """A fresh database for one test, dropped after it."""
    name = f"billing_test_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(name)
    yield Database(pg_cluster, name)
    pg_cluster.drop_database(name)
