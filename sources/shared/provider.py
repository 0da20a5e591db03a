"""What a provider folder exposes so the pipeline can find, configure and run it.

A provider's `__init__.py` defines `PROVIDER = Provider(...)`. The pipeline discovers every
folder under `sources/` that has one; nothing else lists providers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dlt


@dataclass(frozen=True)
class Provider:
    """A provider as the pipeline sees it.

    Attributes:
        name: folder name = dlt source name = config section = `provider` column value.
        title: the provider's display name.
        secrets: keys of `[sources.<name>]` in secrets.toml that must all be set to enable it.
        required_config: keys of `[sources.<name>]` in config.toml that must be set as well.
        source: the `@dlt.source` function; called without arguments, dlt injects its config.
    """

    name: str
    title: str
    secrets: tuple[str, ...]
    required_config: tuple[str, ...]
    source: Callable[..., Any]

    def key(self, name: str) -> str:
        return config_key(self.name, name)

    def env(self, name: str) -> str:
        return env_name(self.name, name)

    def missing_secrets(self) -> list[str]:
        """The required secrets that are not set anywhere dlt looks."""
        return [s for s in self.secrets if not _is_set(dlt.secrets.get(self.key(s)))]

    def missing_config(self) -> list[str]:
        """The required config keys that are not set."""
        return [c for c in self.required_config if not _is_set(dlt.config.get(self.key(c)))]


def _is_set(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def config_key(provider: str, name: str) -> str:
    """The dlt configuration key of a provider's setting: `sources.<provider>.<name>`."""
    return f"sources.{provider}.{name}"


def env_name(provider: str, name: str) -> str:
    """The environment variable dlt reads for a provider's setting: `SOURCES__<P>__<NAME>`."""
    return f"SOURCES__{provider.upper()}__{name.upper()}"


def config_hint(provider: str, names: Iterable[str], *, file: str = "secrets.toml") -> str:
    """What to set, in words a user can act on: the environment variables and the TOML keys
    of the provider's settings `names`, in `.dlt/<file>`."""
    names = list(names)
    envs = ", ".join(env_name(provider, n) for n in names)
    keys = ", ".join(names)
    return f"check {envs} ({keys} under [sources.{provider}] in .dlt/{file})"
