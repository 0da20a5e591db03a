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

    def key(self, name: str, account: str | None = None) -> str:
        """The dlt key of a setting: of the base stanza, or of the account stanza `account`."""
        return config_key(self.name, name, account)

    def env(self, name: str, account: str | None = None) -> str:
        """The environment variable of a setting: of the base stanza, or of the account stanza `account`."""
        return env_name(self.name, name, account)

    def missing_secrets(self) -> list[str]:
        """The required secrets that are not set anywhere dlt looks."""
        return [s for s in self.secrets if not _is_set(dlt.secrets.get(self.key(s)))]

    def missing_config(self) -> list[str]:
        """The required config keys that are not set."""
        return [c for c in self.required_config if not _is_set(dlt.config.get(self.key(c)))]


def _is_set(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def section(provider: str, account: str | None = None) -> str:
    """The TOML table of a provider's stanza: `sources.<provider>`, or of one of its further
    accounts, `sources.<provider>.accounts.<label>` (docs/configuration.md)."""
    return f"sources.{provider}" if account is None else f"sources.{provider}.accounts.{account}"


def config_key(provider: str, name: str, account: str | None = None) -> str:
    """The dlt configuration key of a provider's setting: `sources.<provider>.<name>`
    (`sources.<provider>.accounts.<label>.<name>` for a further account)."""
    return f"{section(provider, account)}.{name}"


def env_name(provider: str, name: str, account: str | None = None) -> str:
    """The environment variable dlt reads for a provider's setting: `SOURCES__<P>__<NAME>`
    (`SOURCES__<P>__ACCOUNTS__<LABEL>__<NAME>` for a further account)."""
    return "__".join(part.upper() for part in config_key(provider, name, account).split("."))


def config_hint(provider: str, names: Iterable[str], *, file: str = "secrets.toml") -> str:
    """What to set, in words a user can act on: the environment variables and the TOML keys
    of the provider's settings `names`, in `.dlt/<file>`."""
    names = list(names)
    envs = ", ".join(env_name(provider, n) for n in names)
    keys = ", ".join(names)
    return f"check {envs} ({keys} under [sources.{provider}] in .dlt/{file})"
