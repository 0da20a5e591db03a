"""The destination: dlt's DuckDB, with table names qualified by the database catalog.

DuckDB names a database file's catalog after the file (`billing.duckdb` → `billing`). With the
default dataset also named `billing`, every two-part name such as `billing.invoices` is
ambiguous to DuckDB's binder ("Ambiguous reference to catalog or schema"), and dlt's DuckDB
client writes exactly such names. Qualifying them with the catalog (`billing.billing.invoices`)
removes the ambiguity, so the documented defaults work as they are. Any other destination is
dlt's own, unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import duckdb
from dlt.common.destination import Destination
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.impl.duckdb.duck import DuckDbClient
from dlt.destinations.impl.duckdb.factory import duckdb as DuckDbDestination
from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient

NON_FILE_DATABASES = (":memory:", ":external:", ":pipeline:")


def catalog_of(database: str) -> str | None:
    """The catalog DuckDB gives a database file: its file name up to the first dot."""
    if not database or database in NON_FILE_DATABASES:
        return None
    return Path(database).name.split(".")[0] or None


class CatalogQualifiedSqlClient(DuckDbSqlClient):
    """dlt's DuckDB SQL client, writing `catalog.dataset.table` instead of `dataset.table`."""

    def catalog_name(self, quote: bool = True, casefold: bool = True) -> str | None:
        catalog = catalog_of(str(self.credentials.database or ""))
        if catalog is None:
            return None
        if casefold:
            catalog = self.capabilities.casefold_identifier(catalog)
        return self.capabilities.escape_identifier(catalog) if quote else catalog


class CatalogQualifiedClient(DuckDbClient):
    """dlt's DuckDB job client using `CatalogQualifiedSqlClient`."""

    def __init__(self, schema: Any, config: Any, capabilities: Any) -> None:
        super().__init__(schema, config, capabilities)
        self.sql_client = CatalogQualifiedSqlClient(
            self.sql_client.dataset_name,
            self.sql_client.staging_dataset_name,
            config.credentials,
            capabilities,
        )

    def initialize_storage(self, truncate_tables: Any = None) -> None:
        # The warning dlt prints when catalog and dataset share a name does not apply here:
        # every name this client writes carries its catalog.
        super(DuckDbClient, self).initialize_storage(truncate_tables)


class billing_duckdb(DuckDbDestination):
    """dlt's DuckDB destination, configured under `[destination.duckdb]` as usual."""

    @property
    def client_class(self) -> type[DuckDbClient]:
        return CatalogQualifiedClient


DEFAULT_DUCKDB_FILE = "billing.duckdb"
# DuckDB takes up to 80 % of the machine's memory by default; a nightly load should not. Past
# this limit it spills to a temporary directory beside the database file.
DEFAULT_DUCKDB_MEMORY_LIMIT = "512MB"


def duckdb_file() -> str:
    """The DuckDB file: `destination.duckdb.credentials` (a secret to dlt: secrets.toml or env
    `DESTINATION__DUCKDB__CREDENTIALS`), else `billing.duckdb` in the working directory."""
    configured: Any = dlt.secrets.get("destination.duckdb.credentials")
    return str(configured) if configured not in (None, "") else DEFAULT_DUCKDB_FILE


def duckdb_credentials() -> DuckDbCredentials:
    """The DuckDB file with a bounded memory budget: `duckdb_memory_limit` (env
    `DUCKDB_MEMORY_LIMIT`, default 512MB). Insertion order is not preserved (rows have keys),
    which lets DuckDB load large batches in less memory."""
    limit: Any = dlt.config.get("duckdb_memory_limit")
    return DuckDbCredentials(
        duckdb_file(),
        global_config={
            "memory_limit": str(limit or DEFAULT_DUCKDB_MEMORY_LIMIT),
            "preserve_insertion_order": False,
        },
    )


def destination(destination_type: str) -> Any:
    """The dlt destination for `destination_type` (`duckdb`, `postgres`, `bigquery`, ...)."""
    if destination_type in ("duckdb", "dlt.destinations.duckdb"):
        return billing_duckdb(credentials=duckdb_credentials(), destination_name="duckdb")
    return Destination.from_reference(destination_type)


def read_only(database: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a warehouse file, attached as `warehouse` and in use, so that
    `billing.invoices` names the dataset without clashing with the file's own catalog (which
    DuckDB also calls `billing` for `billing.duckdb`)."""
    connection = duckdb.connect()
    try:
        connection.execute(f"ATTACH '{database}' AS warehouse (READ_ONLY)")
        connection.execute("USE warehouse")
    except duckdb.Error:
        connection.close()
        raise
    return connection
