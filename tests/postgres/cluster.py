"""One database in the session's throwaway PostgreSQL cluster (`benchmarks.postgres_cluster`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from benchmarks.postgres_cluster import Cluster

__all__ = ["Cluster", "Database"]


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
