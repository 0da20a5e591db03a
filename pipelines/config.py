"""Everything the pipeline reads from configuration, in one place (docs/configuration.md).

Users, cron jobs and tests configure the pipeline only through dlt's mechanisms:
`.dlt/config.toml`, `.dlt/secrets.toml` and environment variables (`SECTION__KEY`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt

from sources.shared.http import RetryPolicy
from sources.shared.provider import Provider

DEFAULT_PIPELINE = "billing"
DEFAULT_DATASET = "billing"
DEFAULT_DESTINATION = "duckdb"
DEFAULT_PROGRESS_INTERVAL = 5.0
DEFAULT_HTTP_TIMEOUT = RetryPolicy.timeout
DEFAULT_MAX_RETRY_AFTER = RetryPolicy.max_retry_after
DEFAULT_REQUEST_DEADLINE = RetryPolicy.deadline


class UsageError(Exception):
    """A wrong command line or configuration that stops the run before it starts."""


def setting(key: str, default: str) -> str:
    """A top-level pipeline setting (`pipeline_name`, `dataset_name`, `destination_type`)."""
    value: Any = dlt.config.get(key)
    return str(value) if value not in (None, "") else default


def pipeline_name(override: str | None = None) -> str:
    """`pipeline_name` (env `PIPELINE_NAME`), default `billing`."""
    return override or setting("pipeline_name", DEFAULT_PIPELINE)


def dataset_name() -> str:
    """`dataset_name` (env `DATASET_NAME`), default `billing`."""
    return setting("dataset_name", DEFAULT_DATASET)


def destination_type() -> str:
    """`destination_type` (env `DESTINATION_TYPE`), default `duckdb`."""
    return setting("destination_type", DEFAULT_DESTINATION)


def pipelines_dir() -> Path:
    """Where dlt keeps the pipeline's local state: `pipelines_dir` (env `PIPELINES_DIR`), else
    dlt's default (`~/.dlt/pipelines`; `/var/dlt/pipelines` for root)."""
    value: Any = dlt.config.get("pipelines_dir")
    if value not in (None, ""):
        return Path(str(value)).expanduser().absolute()
    from dlt.common.pipeline import get_dlt_pipelines_dir

    return Path(get_dlt_pipelines_dir()).absolute()


def seconds(key: str, default: float) -> float:
    """A positive number of seconds at top-level `key` (env: the key in upper case).

    Raises:
        UsageError: the value is not a positive number.
    """
    value: Any = dlt.config.get(key)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{key} = {value!r} is not a number of seconds") from None
    if number <= 0:
        raise UsageError(f"{key} = {value!r} must be more than 0 seconds")
    return number


def retry_policy() -> RetryPolicy:
    """How patient every provider request is (README, "Waits and deadlines"):

    - `http_timeout` (env `HTTP_TIMEOUT`, default 30 s): one attempt's read timeout (connect: 10 s at most);
    - `request_deadline` (env `REQUEST_DEADLINE`, default 120 s): one request with all its retries and
      waits; a server that never answers fails the account within this time;
    - `max_retry_after` (env `MAX_RETRY_AFTER`, default 90 s): the longest `Retry-After` honoured; a
      longer one fails the account at once, saying when to run again.
    """
    timeout = seconds("http_timeout", DEFAULT_HTTP_TIMEOUT)
    return RetryPolicy(
        timeout=timeout,
        connect_timeout=min(timeout, RetryPolicy.connect_timeout),
        deadline=seconds("request_deadline", DEFAULT_REQUEST_DEADLINE),
        max_retry_after=seconds("max_retry_after", DEFAULT_MAX_RETRY_AFTER),
    )


def select(providers: dict[str, Provider], requested: str | None) -> tuple[list[Provider], bool]:
    """The providers to run (`PROVIDERS` / `--providers`: comma-separated names) and whether the
    user named them explicitly.

    Raises:
        UsageError: a requested name is not a provider.
    """
    if not requested or not requested.strip():
        return list(providers.values()), False
    names = [n.strip().lower() for n in requested.split(",") if n.strip()]
    unknown = [n for n in names if n not in providers]
    if unknown:
        raise UsageError(f"unknown provider(s): {', '.join(unknown)}; choose from {', '.join(providers)}")
    return [providers[n] for n in dict.fromkeys(names)], True


def not_configured(provider: Provider) -> str | None:
    """Why a provider cannot run, or None when its secrets and required config are set."""
    missing = [provider.env(s) for s in provider.missing_secrets()]
    missing += [provider.env(c) for c in provider.missing_config()]
    if not missing:
        return None
    return f"not configured: set {', '.join(missing)} (or [sources.{provider.name}] in .dlt/)"


ACCOUNT_KEYS = ("account", "account_name", "workspace")


def account_names(provider: Provider) -> str:
    """`kitchen [acme]`: the provider with its configured account label, where configuration has
    one (some providers learn it from the API: then the provider alone)."""
    for key in ACCOUNT_KEYS:
        value: Any = dlt.config.get(provider.key(key))
        if value not in (None, ""):
            return f"{provider.name} [{value}]"
    return provider.name


def nothing_configured(providers: dict[str, Provider]) -> str:
    """The message for a run where no provider has its secrets, naming what each one needs."""
    needs = "; ".join(
        f"{p.name}: {', '.join(p.env(k) for k in (*p.secrets, *p.required_config))}" for p in providers.values()
    )
    return (
        "no provider is configured. Put credentials in .dlt/secrets.toml (see .dlt/secrets.toml.example) "
        f"or in environment variables ({needs}); or run `make demo` to load the sandboxes."
    )


def duckdb_name_clash(destination: str, duckdb_file: str) -> str | None:
    """Why a DuckDB file cannot hold the dataset, or None. DuckDB names a file's catalog after the
    file (up to its first dot), and a catalog and a schema of one name make `billing.invoices`
    ambiguous in every DuckDB client (docs/configuration.md, Pipeline)."""
    if destination not in ("duckdb", "dlt.destinations.duckdb"):
        return None
    catalog = Path(duckdb_file).name.split(".")[0]
    dataset = dataset_name()
    if catalog.lower() != dataset.lower():
        return None
    return (
        f"the DuckDB file {duckdb_file} is named like the dataset {dataset!r}: DuckDB calls the file's catalog "
        f"{catalog!r} too, so {dataset}.invoices would be ambiguous in every DuckDB client. Rename the file "
        "(the default is warehouse.duckdb; an existing file can simply be renamed) or set dataset_name"
    )
