"""The destination: dlt's DuckDB, writing a file that DuckDB 1.4 and later can open.

Two choices here follow `docs/configuration.md`:

- The default file is `warehouse.duckdb`, not `billing.duckdb`. DuckDB names a file's catalog
  after the file, and a catalog and a schema both called `billing` make `billing.invoices`
  ambiguous in every DuckDB client. With `warehouse.duckdb` the catalog is `warehouse` and
  `billing.invoices` just works, in the DuckDB CLI, in BI drivers and in dlt alike.
- A new file is created in DuckDB's `v1.4.0` storage format. The DuckDB in this environment
  writes its newest format by default, which DuckDB 1.x (CLIs, JDBC/ODBC drivers, BI tools)
  refuses to open. dlt opens the file with a plain `duckdb.connect(path)`, which has no say
  in the format, so the job client creates the file itself first, by attaching it with
  `STORAGE_VERSION`. A file keeps the format it was created with for its whole life: a DuckDB
  that opens it later reads and writes it in that format.

Any other destination is dlt's own, unchanged.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import dlt
import duckdb
from dlt.common.destination import Destination
from dlt.common.destination.exceptions import DestinationTerminalException
from dlt.common.schema.typing import PIPELINE_STATE_TABLE_NAME
from dlt.common.storages.load_package import PackageStorage
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.impl.duckdb.duck import DuckDbClient
from dlt.destinations.impl.duckdb.factory import duckdb as DuckDbDestination
from dlt.destinations.impl.duckdb.sql_client import DuckDBDBApiCursorImpl
from dlt.destinations.insert_job_client import InsertValuesLoadJob

from sources.shared.history import HISTORY
from sources.shared.history import KEY as HISTORY_KEY
from sources.shared.model import CLIENTS, INVOICE_ITEMS, INVOICES, PRIMARY_KEYS, UNMAPPED

DEFAULT_DUCKDB_FILE = "warehouse.duckdb"
PENDING_TRANSITIONS = PackageStorage.PENDING_TRANSITIONS_FOLDER
# The oldest DuckDB that must read the file. DuckDB writes it in `duckdb_databases().tags`.
STORAGE_VERSION = "v1.4.0"
# DuckDB takes up to 80 % of the machine's memory by default; a nightly load should not. Past
# this limit it spills to a temporary directory beside the database file. 256MB keeps a load of
# a million invoices under 1 GiB in all (docs/benchmarks.md, section 4; with 512MB it peaked at
# 1,162 MiB, DuckDB's merges of the later batches filling its budget).
DEFAULT_DUCKDB_MEMORY_LIMIT = "256MB"
NON_FILE_DATABASES = (":memory:", ":external:", ":pipeline:")


def _is_file_path(database: str) -> bool:
    """Whether `database` names a file (not `:memory:`, `md:...` or a `duckdb:///` string)."""
    return bool(database) and database not in NON_FILE_DATABASES and not database.startswith(("md:", "duckdb:"))


def setting(key: str, default: str) -> str:
    """A top-level dlt config value (`dataset_name`, `destination_type`, ...) or `default`."""
    value: Any = dlt.config.get(key)
    return str(value) if value not in (None, "") else default


def create_database_file(database: str | Path, storage_version: str = STORAGE_VERSION) -> bool:
    """Create an empty DuckDB file in `storage_version`'s format, unless it exists already.

    Returns True when the file was created. An existing file is never touched: DuckDB cannot
    rewrite a file into an older format in place, and it keeps the format of the file it opens.
    """
    path = Path(database)
    if path.exists() or not _is_file_path(str(database)):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        literal = str(path).replace("'", "''")
        con.execute(f"ATTACH '{literal}' AS new_warehouse (STORAGE_VERSION '{storage_version}')")
        con.execute("CHECKPOINT new_warehouse")
        con.execute("DETACH new_warehouse")
    return True


def storage_version(con: duckdb.DuckDBPyConnection) -> str | None:
    """The storage format DuckDB reports for the connection's current database (`v1.4.0+`)."""
    row = con.execute(
        "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return str(row[0]) if row and row[0] is not None else None


class SharedTablesRefused(DestinationTerminalException):
    """dlt was asked to drop a table every provider writes (`dlt pipeline <name> drop ...`)."""


class SharedTablesGuard:
    """Refuses dlt's DROP TABLE of the canonical tables.

    Every provider's dlt schema declares the same `invoices`, `invoice_items`, `clients` and
    `unmapped_records` (docs/canonical-model.md), so dlt's `drop` of one provider's resource,
    which drops whole tables, would delete every provider's rows. One provider's (or account's)
    rows and state are deleted by `billing-elt reset PROVIDER[:LABEL]` instead (docs/operations.md,
    "dlt's own tools"). The refusal comes before anything is dropped; other tables (`pipeline_runs`,
    in its own schema) are dlt's to drop as usual.
    """

    schema: Any

    def drop_tables(self, *tables: str, delete_schema: bool = True) -> None:
        shared = [t for t in tables if t in SHARED_TABLES]
        if shared:
            raise SharedTablesRefused(_refusal(str(self.schema.name), shared))
        super().drop_tables(*tables, delete_schema=delete_schema)  # type: ignore[misc]


SHARED_TABLES = frozenset((INVOICES, INVOICE_ITEMS, CLIENTS, UNMAPPED, HISTORY))


def _refusal(provider: str, tables: list[str]) -> str:
    return (
        f"{provider}: dlt's drop refused: {', '.join(sorted(tables))} hold the rows of every provider "
        f"and account, so dropping them for {provider} would delete the others' rows too. Nothing was "
        f"dropped. To delete {provider}'s rows and incremental state only, run `billing-elt reset "
        f"{provider}` (or `billing-elt reset {provider}:LABEL` for one account); the next load reads "
        "them again."
    )


class ArrowCursor(DuckDBDBApiCursorImpl):
    """dlt's DuckDB cursor, reading a whole result as Arrow with the DuckDB installed: dlt 1.31
    calls `fetch_arrow_table()`, which DuckDB 2 no longer has (`to_arrow_table()` replaced it), so
    `pipeline.dataset()`'s `.arrow()` failed. DuckDB warns that this copies the rows once, as
    `fetch_arrow_table()` did: the warning is not passed on to the reader."""

    def iter_arrow(self, chunk_size: int) -> Generator[Any, None, None]:
        if chunk_size or not hasattr(self.native_cursor, "to_arrow_table"):
            yield from super().iter_arrow(chunk_size)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            table = self.native_cursor.to_arrow_table()
        yield table


class StorageVersionClient(SharedTablesGuard, DuckDbClient):
    """dlt's DuckDB job client, which creates a missing database file in `STORAGE_VERSION`'s
    format before its SQL client opens (and would otherwise create) it, reads query results as
    Arrow with the DuckDB installed (`ArrowCursor`) and refuses to drop the shared tables
    (`SharedTablesGuard`)."""

    def __init__(self, schema: Any, config: Any, capabilities: Any) -> None:
        create_database_file(str(config.credentials.database or ""))
        super().__init__(schema, config, capabilities)
        self.sql_client.cursor_impl = ArrowCursor  # type: ignore[misc]


class billing_duckdb(DuckDbDestination):
    """dlt's DuckDB destination, configured under `[destination.duckdb]` as usual. Made without
    credentials (as dlt's own tools make it from the pipeline's state), it opens the same file a
    load writes (`duckdb_credentials`), not dlt's default `<pipeline_name>.duckdb`."""

    def __init__(self, credentials: Any = None, **kwargs: Any) -> None:
        super().__init__(credentials=credentials if credentials is not None else duckdb_credentials(), **kwargs)

    @property
    def client_class(self) -> type[DuckDbClient]:
        return StorageVersionClient


def duckdb_file() -> str:
    """The DuckDB file: `destination.duckdb.credentials` (a secret to dlt: secrets.toml or env
    `DESTINATION__DUCKDB__CREDENTIALS`), else `warehouse.duckdb` in the working directory."""
    configured: Any = dlt.secrets.get("destination.duckdb.credentials")
    return str(configured) if configured not in (None, "") else DEFAULT_DUCKDB_FILE


def duckdb_credentials() -> DuckDbCredentials:
    """The DuckDB file with a bounded memory budget: `duckdb_memory_limit` (env
    `DUCKDB_MEMORY_LIMIT`, default 256MB). Insertion order is not preserved (rows have keys),
    which lets DuckDB load large batches in less memory. A relative path is taken from the
    working directory."""
    limit: Any = dlt.config.get("duckdb_memory_limit")
    database = duckdb_file()
    if _is_file_path(database):
        database = os.path.abspath(database)
    return DuckDbCredentials(
        database,
        global_config={
            "memory_limit": str(limit or DEFAULT_DUCKDB_MEMORY_LIMIT),
            "preserve_insertion_order": False,
        },
    )


@contextlib.contextmanager
def hold_duckdb_file(database: Path | None) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The DuckDB file open for a whole command (a load, a remap, a reset), every step of it
    writing through this one connection: DuckDB lets one process write a file only while no other
    process has it open, so a reader that opened the file between two steps would otherwise make
    the next step fail. While it is held, a reader is refused at once (DuckDB names this process).
    None, and nothing held, for a destination that is not a DuckDB file."""
    if database is None:
        yield None
        return
    create_database_file(database)
    connection = duckdb.connect(str(database))
    try:
        yield connection
    finally:
        connection.close()


def is_duckdb(destination_type: str) -> bool:
    return destination_type in ("duckdb", "dlt.destinations.duckdb")


def destination(destination_type: str, held: duckdb.DuckDBPyConnection | None = None) -> Any:
    """The dlt destination for `destination_type` (`duckdb`, `postgres`, `bigquery`, ...); for
    DuckDB, with `held`, through that connection (see `hold_duckdb_file`)."""
    if is_duckdb(destination_type):
        if held is not None:
            credentials = DuckDbCredentials(held)
            credentials.global_config = duckdb_credentials().global_config
            return billing_duckdb(credentials=credentials, destination_name="duckdb")
        return billing_duckdb(credentials=duckdb_credentials(), destination_name="duckdb")
    if destination_type in ("postgres", "dlt.destinations.postgres"):
        return billing_postgres(destination_name="postgres")
    return Destination.from_reference(destination_type)


def read_only(database: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a warehouse file: `billing.invoices` names the dataset's table.

    The connection's time zone is UTC, as in dlt's connections, so `current_date` (which the
    views use for ages and overdue days) is the same day the load saw."""
    if not Path(database).exists():
        raise FileNotFoundError(f"no DuckDB warehouse at {database}: run `make load` (or `make demo`) first")
    connection = duckdb.connect(str(database), read_only=True)
    try:
        connection.execute("SET TimeZone = 'UTC'")
    except duckdb.Error:
        connection.close()
        raise
    return connection


class Reader:
    """Read-only queries on the warehouse, whatever the destination.

    DuckDB files are opened read-only and directly (no lock on other readers, no dlt pipeline
    state needed); any other destination goes through the dlt pipeline's `sql_client`. Queries
    are written in DuckDB's dialect and transpiled for the destination by `sql()`.
    """

    def __init__(self, dataset: str, dialect: str, run: Any, catalog: str | None = None) -> None:
        self.dataset, self.dialect, self._run, self.catalog = dataset, dialect, run, catalog

    def table(self, name: str) -> str:
        """`dataset.name` as written in a DuckDB-dialect query given to `sql()`."""
        return f'"{self.dataset}"."{name}"'

    def sql(self, query: str) -> str:
        """`query` (DuckDB dialect) in the destination's dialect."""
        if self.dialect == "duckdb":
            return query
        import sqlglot

        return ";\n".join(sqlglot.transpile(query, read="duckdb", write=self.dialect))

    def query(self, query: str, *, transpile: bool = True) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of `query`."""
        columns, rows = self._run(self.sql(query) if transpile else query, None)
        return columns, rows

    def fetch(self, query: str, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]], bool]:
        """At most `limit` rows of `query` (run as written) and whether more were left."""
        columns, rows = self._run(query, None if limit is None else limit + 1)
        more = limit is not None and len(rows) > limit
        return columns, rows[:limit] if limit is not None else rows, more

    def dicts(self, query: str) -> list[dict[str, Any]]:
        columns, rows = self.query(query)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def relations(self) -> set[str]:
        """Names of the tables and views in the dataset."""
        literal = self.dataset.replace("'", "''")
        _, rows = self.query(f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{literal}'")
        return {str(r[0]) for r in rows}


def _fetch(cursor: Any, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]]]:
    columns = [d[0] for d in cursor.description or []]
    rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit)
    return columns, [tuple(r) for r in rows or []]


@contextmanager
def duckdb_reader(database: str | Path, dataset: str = "billing") -> Iterator[Reader]:
    """A `Reader` on a DuckDB file, opened read-only."""
    with read_only(database) as con:

        def run(query: str, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]]]:
            return _fetch(con.execute(query), limit)

        catalog = con.execute("SELECT current_database()").fetchone()
        yield Reader(dataset, "duckdb", run, catalog=str(catalog[0]) if catalog else None)


@contextmanager
def pipeline_reader(pipeline: dlt.Pipeline) -> Iterator[Reader]:
    """A `Reader` on the destination of a dlt pipeline, through its `sql_client`."""
    with pipeline.sql_client() as client:
        dialect = str(client.capabilities.sqlglot_dialect or "duckdb")

        def run(query: str, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]]]:
            with client.execute_query(query) as cursor:
                return _fetch(cursor, limit)

        yield Reader(client.dataset_name, dialect, run)


@contextmanager
def reader(database: str | Path | None = None, *, dataset: str | None = None) -> Iterator[Reader]:
    """A `Reader` on the configured warehouse: `database` (a DuckDB file) when given, else the
    configured destination (`destination_type`, default DuckDB at `duckdb_file()`)."""
    dataset_name = dataset or setting("dataset_name", "billing")
    destination_type = setting("destination_type", "duckdb")
    if database is not None or is_duckdb(destination_type):
        with duckdb_reader(database if database is not None else duckdb_file(), dataset_name) as r:
            yield r
        return
    pipeline = dlt.pipeline(
        pipeline_name=setting("pipeline_name", "billing"),
        destination=destination(destination_type),
        dataset_name=dataset_name,
    )
    with pipeline_reader(pipeline) as r:
        yield r


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
    if factory is None:
        raise ValueError(f"unknown destination {destination_type!r}")
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

    class KeyedPostgresClient(SharedTablesGuard, PrimaryKeyConstraints, PostgresClient):
        pass

    return KeyedPostgresClient


class billing_postgres(PostgresDestination):
    """dlt's Postgres destination with primary keys, configured under `[destination.postgres]`."""

    @property
    def client_class(self) -> Any:
        return keyed_postgres_client()


def account_holds_no_rows(pipeline: dlt.Pipeline) -> Any:
    """`holds_no_rows(provider, account)` for the driver (`sources.shared.driver.Account`):
    whether the pipeline's destination holds no row of that provider account in any canonical
    table (a table not created yet holds none). Asked of the destination itself, never of
    state, so a first run killed after it committed a batch is not taken for empty again.

    None (every load merges) for a destination other than DuckDB: an appended table that a
    kill interrupted inside its load is repaired before it is loaded again
    (`repair_interrupted_appends`), which reads the package's parquet files in DuckDB."""
    if not is_duckdb(pipeline.destination.destination_name) and not is_duckdb(pipeline.destination.destination_type):
        return None

    def holds_no_rows(provider: str, account: str) -> bool:
        with pipeline.sql_client() as client:
            if not client.has_dataset():
                return True
            for table in (INVOICES, CLIENTS, INVOICE_ITEMS, UNMAPPED):
                qualified = client.make_qualified_table_name(table)
                try:
                    rows = client.execute_sql(
                        f"SELECT 1 FROM {qualified} WHERE provider = %s AND account = %s LIMIT 1", provider, account
                    )
                except DatabaseUndefinedRelation:
                    continue
                if rows:
                    return False
        return True

    return holds_no_rows


# The tables a load appends to, with the columns that tell the rows of one load job from those of
# any other (`repair_interrupted_appends`): the canonical tables (a first load into DuckDB), dlt's
# state, and the run's own records (`pipeline_runs`: pipelines/run.py; `data_checks`: pipelines/checks.py).
APPENDED_KEYS: dict[str, tuple[str, ...]] = {
    **PRIMARY_KEYS,
    PIPELINE_STATE_TABLE_NAME: ("_dlt_id",),
    "pipeline_runs": ("run_id", "provider", "account"),
    "data_checks": ("run_id", "provider", "account", "check_name"),
}


def repair_interrupted_appends(pipeline: dlt.Pipeline) -> list[str]:
    """Undo what a killed load may have half-written by appending, before the package is loaded
    again; one line per table repaired.

    A job that appends and was killed after its rows were committed but before dlt marked it
    done is run again by the next load: appended twice. Such a job is still among the package's
    started jobs without the pending transition dlt writes once the destination committed a job
    (a job with one is marked done, not run again); the rows with the keys of its file are
    deleted first (a key is in one file only), so that running it again appends them once.
    Jobs that append:

    - a canonical table's first load into DuckDB (`TableWriter`): the account held no rows
      before that package, so the rows with the file's keys are the job's own;
    - the rows of a table only ever appended to (`APPENDED_KEYS`): dlt's state, the run's
      `pipeline_runs` and `data_checks` (on Postgres, dlt's state row appended twice breaks
      its unique `_dlt_id` and every later run with it);
    - `invoice_history`'s copy into the staging dataset, which the `scd2` merge then reads
      (any SQL destination): dlt empties a staging table when a package starts loading, not
      when an interrupted one resumes, and the merge does not deduplicate, so a copy run twice
      would give every invoice of the file two current history rows. The staging table holds
      this package's rows only.

    Tables merged by primary key need nothing: the merge keeps one row per key."""
    on_duckdb = is_duckdb(pipeline.destination.destination_name) or is_duckdb(pipeline.destination.destination_type)
    try:
        opened = pipeline.sql_client()
    except Exception:  # a destination without SQL (a filesystem): dlt's load is all there is
        return []
    notes: list[str] = []
    with opened as client:
        for load_id in pipeline.list_normalized_load_packages():
            package = pipeline.get_load_package_info(load_id)
            for started in package.jobs.get("started_jobs", []):
                job = started.job_file_info
                table = package.schema.tables.get(job.table_name) or {}
                if job.table_name in APPENDED_KEYS and table.get("write_disposition") == "append":
                    keys, staging, where = APPENDED_KEYS[job.table_name], False, ""
                elif job.table_name == HISTORY and table.get("x-merge-strategy") == "scd2":
                    keys, staging, where = HISTORY_KEY, True, " in the staging table its merge reads"
                else:
                    continue
                if job.file_format == "sql":  # the merge itself: run again, it gives the same rows
                    continue
                path = os.path.abspath(started.file_path)
                # A job whose rows the destination committed and dlt recorded as such (its pending
                # transition) is marked done without running again: its rows stay as they are.
                if os.path.exists(
                    os.path.join(os.path.dirname(os.path.dirname(path)), PENDING_TRANSITIONS, os.path.basename(path))
                ):
                    continue
                if not (job.file_format == "insert_values" or (job.file_format == "parquet" and on_duckdb)):
                    notes.append(
                        f"{job.table_name}: an interrupted {job.file_format} load job cannot be read back here to be "
                        "repaired; if the warehouse had committed it, its rows are loaded twice"
                    )
                    continue
                with client.with_staging_dataset() if staging else nullcontext(client):
                    if not client.has_dataset():
                        continue
                    qualified = client.make_qualified_table_name(job.table_name)
                    match = " AND ".join(f"t.{k} = f.{k}" for k in keys)
                    try:
                        with _rows_of_file(client, path, job.file_format, qualified, on_duckdb) as rows_of_file:
                            rows = client.execute_sql(
                                f"DELETE FROM {qualified} AS t USING {rows_of_file} AS f WHERE {match} RETURNING 1"
                            )
                    except DatabaseUndefinedRelation:
                        continue
                notes.append(
                    f"{job.table_name}: {len(rows or [])} row(s) of an interrupted appending load removed{where}"
                    " before it is loaded again"
                )
    return notes


@contextmanager
def _rows_of_file(client: Any, path: str, file_format: str, like: str, on_duckdb: bool) -> Iterator[str]:
    """A relation that holds the rows of a load job's file, for a DELETE ... USING: DuckDB reads a
    parquet file itself; the INSERT statements of an `insert_values` file (Postgres) fill a
    temporary table shaped like `like`, through dlt's own reader of such files."""
    if file_format == "parquet" and on_duckdb:
        yield "read_parquet('" + path.replace("'", "''") + "')"
        return
    scratch = "_billing_interrupted_copy"
    client.execute_sql(f"DROP TABLE IF EXISTS {scratch}")
    client.execute_sql(f"CREATE TEMPORARY TABLE {scratch} AS SELECT * FROM {like} WHERE 1 = 0")
    try:
        reader = InsertValuesLoadJob(path)
        reader._sql_client = client  # what its `_insert` reads the destination's limits from
        for fragments in reader._insert(scratch, path):
            client.execute_fragments(fragments)
        yield scratch
    finally:
        client.execute_sql(f"DROP TABLE IF EXISTS {scratch}")
