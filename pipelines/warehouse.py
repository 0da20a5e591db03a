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
    if destination_type in ("postgres", "dlt.destinations.postgres"):
        return billing_postgres(destination_name="postgres")
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


# --- loader file format and Postgres --------------------------------------------------------
#
# Kept apart from the DuckDB code above: which file format dlt writes for a destination, and
# dlt's Postgres with primary keys. Nothing here imports the Postgres driver (the optional
# `postgres` extra) until a Postgres load starts.

import logging  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from functools import cache  # noqa: E402

from dlt.common.schema.typing import TColumnSchema  # noqa: E402
from dlt.common.typing import TLoaderFileFormat  # noqa: E402
from dlt.destinations.impl.postgres.factory import postgres as PostgresDestination  # noqa: E402
from dlt.destinations.job_client_impl import SqlJobClientWithStagingDataset  # noqa: E402


def loader_file_format(destination_type: str | Destination[Any, Any]) -> TLoaderFileFormat:
    """The file format dlt should write for a destination (a type name such as `postgres`, or a
    destination factory): parquet where the destination loads it as installed, else the
    destination's own preferred format.

    Rows reach dlt as Arrow tables, so parquet costs nothing to write and DuckDB reads it in
    bulk. Postgres loads parquet only through an ADBC driver (an optional download dlt warns
    about on every table when it is missing); without one, its preferred format, INSERT
    statements, which keep every value exactly. Not csv: dlt's COPY reads an empty string in a
    nullable column as NULL.
    """
    factory = Destination.from_reference(destination_type) if isinstance(destination_type, str) else destination_type
    assert factory is not None, destination_type
    caps = factory.capabilities()
    preferred = caps.preferred_loader_file_format
    supported: Sequence[TLoaderFileFormat] = list(caps.supported_loader_file_formats or [])
    if caps.loader_file_format_selector is not None:
        # The selector drops a format whose driver is missing. It warns only for a table that
        # asks for that format, which this probe does not.
        preferred, supported = caps.loader_file_format_selector(preferred, supported, table_schema={"name": "_probe"})
    return "parquet" if "parquet" in supported else preferred


class _ChosenInsertValuesNotice(logging.Filter):
    """dlt notes, once per table and run, that it converts Arrow rows to INSERT statements
    instead of writing them natively. For Postgres without ADBC that is `loader_file_format`'s
    deliberate choice (the exact one), so the note carries no news for a user."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            "yielded as arrow and job file format insert_values" in message and "ArrowToInsertValues" in message
        )


logging.getLogger("dlt").addFilter(_ChosenInsertValuesNotice())


class PrimaryKeyConstraints(SqlJobClientWithStagingDataset):
    """Declares each table's primary key when the job client creates the table (dlt's Postgres
    creates UNIQUE constraints only). `create_indexes = false` under `[destination.postgres]`
    turns both off. Staging tables, which may hold a key twice until the merge deduplicates
    it, get none; nor does a table that already exists (dlt only adds columns to it)."""

    def _get_constraints_sql(self, table_name: str, new_columns: Sequence[TColumnSchema], generate_alter: bool) -> str:
        sql = super()._get_constraints_sql(table_name, new_columns, generate_alter)
        if not getattr(self.config, "create_indexes", False) or generate_alter or self.in_staging_dataset_mode:
            return sql
        keys = [str(c["name"]) for c in new_columns if c.get("primary_key")]
        if not keys:
            return sql
        constraint = self.sql_client.escape_column_name(f"{table_name}_pkey")
        columns = ", ".join(self.sql_client.escape_column_name(k) for k in keys)
        return f"{sql},\nCONSTRAINT {constraint} PRIMARY KEY ({columns})"


@cache
def keyed_postgres_client() -> type[SqlJobClientWithStagingDataset]:
    """dlt's Postgres job client with `PrimaryKeyConstraints` (imports the driver)."""
    from dlt.destinations.impl.postgres.postgres import PostgresClient

    class KeyedPostgresClient(PrimaryKeyConstraints, PostgresClient):
        pass

    return KeyedPostgresClient


class billing_postgres(PostgresDestination):
    """dlt's Postgres destination with primary keys, configured under `[destination.postgres]`."""

    @property
    def client_class(self) -> Any:
        return keyed_postgres_client()
