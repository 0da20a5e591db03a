"""Which file format the pipeline asks dlt to write, by destination (no database needed)."""

from __future__ import annotations

from pipelines.warehouse import destination, loader_file_format


def test_duckdb_loads_parquet() -> None:
    assert loader_file_format("duckdb") == "parquet"
    assert loader_file_format(destination("duckdb")) == "parquet"


def test_postgres_without_an_adbc_driver_loads_insert_statements() -> None:
    # parquet would need the ADBC driver (dlt warns on every table without it); dlt's csv COPY
    # turns empty strings into NULL. INSERT statements keep every value.
    assert loader_file_format("postgres") == "insert_values"
    assert loader_file_format(destination("postgres")) == "insert_values"
