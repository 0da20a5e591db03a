"""Everything the pipeline reads from configuration, in one place (docs/configuration.md).

Users, cron jobs and tests configure the pipeline only through dlt's mechanisms:
`.dlt/config.toml`, `.dlt/secrets.toml` and environment variables (`SECTION__KEY`).
"""

from __future__ import annotations

from typing import Any

import dlt

from sources.shared.provider import Provider

DEFAULT_PIPELINE = "billing"
DEFAULT_DATASET = "billing"
DEFAULT_DESTINATION = "duckdb"
DEFAULT_PROGRESS_INTERVAL = 5.0


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


def nothing_configured(providers: dict[str, Provider]) -> str:
    """The message for a run where no provider has its secrets, naming what each one needs."""
    needs = "; ".join(
        f"{p.name}: {', '.join(p.env(k) for k in (*p.secrets, *p.required_config))}" for p in providers.values()
    )
    return (
        "no provider is configured. Put credentials in .dlt/secrets.toml (see .dlt/secrets.toml.example) "
        f"or in environment variables ({needs}); or run `make demo` to load the sandboxes."
    )
